"""A lab daemon run in a chroot under our pid file: start it, tell if it runs, stop it.

The lab Asterisk and the lab FreeSWITCH both run as ``setsid chroot <root> <binary> <args>``:
``chroot`` execs the daemon, so the pid we record is the daemon's own. The pid file alone is
not trusted: a pid counts as ours only while it is alive and its command line names our binary
and our instance's identifying argument (its config path), so a recycled pid is never killed.

    daemon = ChrootDaemon("FreeSWITCH", describe, say=print, mount_proc=True)
    daemon.check_ports_free()
    daemon.start()
    daemon.wait_ready(answers, timeout=60, interval=0.2, log_tail=tail)  # False: timed out
    daemon.stop(timeout=15)

``describe()`` returns the ``DaemonSpec`` (root, binary and arguments, pid file, log, ports);
it is asked anew each time, so an owner whose settings change keeps one ``ChrootDaemon``.

With ``mount_proc`` the chroot's ``/proc`` is mounted before the start and unmounted once no
process runs in the chroot any more (the last lab instance in it to stop unmounts it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voicedock_lab.errors import LabError
from voicedock_lab.provision import mounts_under, processes_rooted_in
from voicedock_lab.settings import BIND_ADDRESS

# (socket.SOCK_STREAM or socket.SOCK_DGRAM, port) on BIND_ADDRESS.
Port = tuple[socket.SocketKind, int]


@dataclass(frozen=True)
class DaemonSpec:
    """Where one daemon instance lives and how it is started."""

    instance: str
    root: Path  # the chroot
    binary: str  # as seen inside the chroot; also the first word of its command line
    args: tuple[str, ...]
    identity: str  # an argument only this instance passes (its config path)
    pid_path: Path
    log_path: Path  # the daemon's stdout and stderr, appended
    ports: tuple[Port, ...]


class ChrootDaemon:
    """One daemon of ours: ``spec`` is asked anew each time (the settings may change).

    ``spec`` may raise ``LabError`` (e.g. FreeSWITCH without its sources): the daemon then
    counts as not running, and ``stop()`` touches nothing on disk.
    """

    def __init__(
        self,
        name: str,
        spec: Callable[[], DaemonSpec],
        *,
        say: Callable[[str], None],
        mount_proc: bool = False,
    ) -> None:
        self._name = name
        self._spec = spec
        self._say = say
        self._mounts_proc = mount_proc
        self._process: subprocess.Popen[bytes] | None = None

    def running_pid(self) -> int | None:
        """The daemon's pid if it is alive (checked against its command line)."""
        try:
            spec = self._spec()
            pid = int(spec.pid_path.read_text().strip())
        except (OSError, ValueError, LabError):
            return None
        if self._process is not None and self._process.pid == pid:
            return pid if self._process.poll() is None else None
        if not _pid_alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        # A recycled pid must not be killed: require our binary and our instance's config.
        if spec.binary.encode() in cmdline[:1] and spec.identity.encode() in cmdline:
            return pid
        return None

    def check_ports_free(self) -> None:
        """``LabError`` naming the first of the daemon's ports another socket holds."""
        for kind, port in self._spec().ports:
            with socket.socket(socket.AF_INET, kind) as sock:
                if kind == socket.SOCK_STREAM:
                    # As the daemons do: connections in TIME_WAIT do not block a new listener.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((BIND_ADDRESS, port))
                except OSError as exc:
                    raise LabError(f"port {BIND_ADDRESS}:{port} is taken: {exc}") from exc

    def start(self) -> None:
        """Mount /proc (if asked), start the daemon as our child and write its pid file."""
        spec = self._spec()
        if self._mounts_proc:
            _mount_proc(spec.root)
        argv = ["chroot", str(spec.root), spec.binary, *spec.args]
        self._say(f"starting {self._name} (instance {spec.instance!r})")
        with spec.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # = setsid: our terminal's signals do not reach it
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
            )
        spec.pid_path.write_text(f"{self._process.pid}\n")

    def wait_ready(
        self,
        ready: Callable[[float], bool],
        *,
        timeout: float,
        interval: float,
        log_tail: Callable[[], str],
    ) -> bool:
        """Poll ``ready(seconds left)`` every ``interval``: True once it is, False after
        ``timeout``; ``LabError`` with ``log_tail()`` if the daemon exits meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running_pid() is None:
                raise LabError(f"{self._name} exited during start-up:\n{log_tail()}")
            if ready(deadline - time.monotonic()):
                return True
            time.sleep(interval)
        return False

    def stop(self, timeout: float) -> None:
        """TERM, then KILL after ``timeout``; our own child too; remove the pid file, unmount
        /proc if nothing runs in the chroot any more, and wait until the ports are free."""
        pid = self.running_pid()
        if pid is not None:
            self._say(f"stopping {self._name} pid {pid}")
            os.kill(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                self._say(f"{self._name} pid {pid} ignored SIGTERM for {timeout:.0f} s: SIGKILL")
                os.kill(pid, signal.SIGKILL)
                self._wait_exit(pid, 5.0)
        own = self._process  # our child, even if another instance of this name took the pid file
        if own is not None and own.pid != pid and own.poll() is None:
            own.kill()
            own.wait(5.0)
        self._process = None
        try:
            spec = self._spec()
        except LabError:
            return  # nothing of ours on disk
        spec.pid_path.unlink(missing_ok=True)
        if self._mounts_proc:
            _umount_proc_if_unused(spec.root)
        if pid is not None:
            self._wait_ports_released(timeout=5.0)

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._process is not None and self._process.pid == pid:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return True
            time.sleep(0.05)
        return not _pid_alive(pid)

    def _wait_ports_released(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.check_ports_free()
            except LabError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
            else:
                return


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # Field 3 is the state; a zombie has exited already.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _mount_proc(root: Path) -> None:
    proc = root / "proc"
    if proc in mounts_under(root):
        return
    proc.mkdir(exist_ok=True)
    result = subprocess.run(  # noqa: S603 - fixed argv
        ["mount", "-t", "proc", "proc", str(proc)],  # noqa: S607 - from PATH, as debootstrap
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise LabError(f"cannot mount {proc}: {result.stderr.strip()}")


def _umount_proc_if_unused(root: Path) -> None:
    if processes_rooted_in(root):
        return  # another lab instance still runs in this chroot
    for point in mounts_under(root):
        subprocess.run(  # noqa: S603 - fixed argv
            ["umount", "-l", str(point)],  # noqa: S607
            capture_output=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
