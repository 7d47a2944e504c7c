"""Run the lab FreeSWITCH: build (cached), write the instance config, start, wait for ESL, stop.

FreeSWITCH runs as ``chroot <build root> /usr/local/freeswitch/bin/freeswitch -nc -nf -nonat
-np -conf <instance>/conf -log <instance>/log -db <instance>/db -run <instance>/run ...``:
``-nc`` without ``-nf`` would daemonize (fork) and leave us a pid that has already exited;
with ``-nf`` the pid ``chroot`` execs into is FreeSWITCH itself. ``/proc`` of the chroot is
mounted while any lab FreeSWITCH runs in it and unmounted by the last one to stop.

    with LabFreeswitch(FreeswitchLabSettings().with_free_ports()) as lab:
        lab.esl_port, lab.esl_password, lab.recordings_dir
        lab.api("show channels as json")
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from voicedock.lab import freeswitch_build
from voicedock.lab.config import find_project_root
from voicedock.lab.errors import LabError
from voicedock.lab.freeswitch_build import FREESWITCH_PREFIX, FreeswitchBuild, FreeswitchSources
from voicedock.lab.freeswitch_config import FreeswitchLabSettings, render_freeswitch_xml
from voicedock.lab.provision import mounts_under, processes_rooted_in
from voicedock.lab.settings import BIND_ADDRESS

FREESWITCH = f"{FREESWITCH_PREFIX}/bin/freeswitch"
_INSTANCE_SUBDIRS = ("conf", "log", "db", "run", "temp", "recordings", "storage", "cache")


@dataclass(frozen=True)
class FreeswitchLabStatus:
    built: bool
    running: bool
    pid: int | None
    detail: str


class LabFreeswitch:
    """The lab FreeSWITCH. ``up()`` and ``down()`` are idempotent; also a context manager."""

    def __init__(
        self,
        settings: FreeswitchLabSettings | None = None,
        *,
        sources_dir: Path | None = None,
        cache_dir: Path | None = None,
        project_root: Path | None = None,
        verbose: bool = True,
    ) -> None:
        self.settings = settings or FreeswitchLabSettings()
        self._sources_dir = sources_dir
        self._cache_dir = cache_dir
        self._project_root = project_root
        self._verbose = verbose
        self._process: subprocess.Popen[bytes] | None = None
        self._build: FreeswitchBuild | None = None
        self.build_seconds = 0.0

    def __enter__(self) -> LabFreeswitch:
        self.up()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.down()

    # ---- where things are -------------------------------------------------------------------
    @property
    def build(self) -> FreeswitchBuild:
        """The cached build for the current tarballs (``LabError`` if they are missing)."""
        if self._build is None:
            sources_dir = self._sources_dir or freeswitch_build.default_sources_dir()
            sources = FreeswitchSources.find(sources_dir)
            self._build = FreeswitchBuild.for_sources(sources, self._cache_dir)
        return self._build

    @property
    def root(self) -> Path:
        return self.build.root

    @property
    def instance_dir(self) -> Path:
        return self.root / self.settings.instance_path.lstrip("/")

    @property
    def esl_host(self) -> str:
        return BIND_ADDRESS

    @property
    def esl_port(self) -> int:
        return self.settings.esl_port

    @property
    def esl_password(self) -> str:
        return self.settings.esl_password

    @property
    def recordings_dir(self) -> Path:
        return self.instance_dir / "recordings"

    @property
    def log_path(self) -> Path:
        return self.instance_dir / "freeswitch.stdout"

    @property
    def freeswitch_log_path(self) -> Path:
        return self.instance_dir / "log" / "freeswitch.log"

    @property
    def saved_path(self) -> Path:
        return self.instance_dir / "lab.json"

    @property
    def _pid_path(self) -> Path:
        return self.instance_dir / "freeswitch.lab.pid"

    @property
    def _conf_path(self) -> str:
        return f"{self.settings.instance_path}/conf"

    def _say(self, message: str) -> None:
        if self._verbose:
            print(f"[lab] {message}", flush=True)

    def saved_or_self(self) -> LabFreeswitch:
        """This lab with the settings a running instance of its name was started with."""
        try:
            saved = FreeswitchLabSettings.from_json(self.saved_path.read_text())
        except (OSError, ValueError, TypeError):
            return self
        self.settings = saved
        return self

    # ---- lifecycle --------------------------------------------------------------------------
    def up(self, *, timeout: float = 30.0) -> None:
        """Build (cached), configure and start FreeSWITCH; return once its Event Socket answers."""
        sources_dir = self._sources_dir or freeswitch_build.default_sources_dir()
        sources = FreeswitchSources.find(sources_dir)
        self._build, spent = freeswitch_build.build(sources, self._cache_dir, log=self._verbose)
        self.build_seconds = spent
        if spent > 1.0:
            self._say(f"built FreeSWITCH in {spent:.0f} s")
        if self._running_pid() is not None:
            self._say(f"instance {self.settings.instance!r} already running")
            return
        self.configure()
        self._check_ports_free()
        self.saved_path.write_text(self.settings.to_json())
        self.saved_path.chmod(0o600)  # it holds the ESL password
        self._mount_proc()
        self._start()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.down()
            raise

    def configure(self) -> None:
        """(Re)write the instance directory: ``conf/freeswitch.xml`` and the writable dirs."""
        project = self._project_root or find_project_root()
        text = render_freeswitch_xml(self.settings, project)
        inst = self.instance_dir
        for sub in _INSTANCE_SUBDIRS:
            (inst / sub).mkdir(parents=True, exist_ok=True)
        conf = inst / "conf" / "freeswitch.xml"
        conf.write_text(text)
        conf.chmod(0o600)  # it holds the ESL password

    def _check_ports_free(self) -> None:
        s = self.settings
        for kind, port in (
            (socket.SOCK_STREAM, s.esl_port),
            (socket.SOCK_DGRAM, s.sip_port),
            (socket.SOCK_STREAM, s.sip_port),
            (socket.SOCK_DGRAM, s.carrier_sip_port),
            (socket.SOCK_STREAM, s.carrier_sip_port),
        ):
            with socket.socket(socket.AF_INET, kind) as sock:
                if kind == socket.SOCK_STREAM:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((BIND_ADDRESS, port))
                except OSError as exc:
                    raise LabError(f"port {BIND_ADDRESS}:{port} is taken: {exc}") from exc

    def _mount_proc(self) -> None:
        proc = self.root / "proc"
        if proc in mounts_under(self.root):
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

    def _umount_proc_if_unused(self) -> None:
        if processes_rooted_in(self.root):
            return  # another lab instance still runs in this chroot
        for point in mounts_under(self.root):
            subprocess.run(  # noqa: S603 - fixed argv
                ["umount", "-l", str(point)],  # noqa: S607
                capture_output=True,
                check=False,
                stdin=subprocess.DEVNULL,
            )

    def _start(self) -> None:
        inst = self.settings.instance_path
        argv = [
            "chroot",
            str(self.root),
            FREESWITCH,
            "-nc",
            "-nf",
            "-nonat",
            "-np",
            "-conf",
            f"{inst}/conf",
            "-log",
            f"{inst}/log",
            "-db",
            f"{inst}/db",
            "-run",
            f"{inst}/run",
            "-temp",
            f"{inst}/temp",
            "-storage",
            f"{inst}/storage",
            "-cache",
            f"{inst}/cache",
            "-recordings",
            f"{inst}/recordings",
        ]
        self._say(f"starting FreeSWITCH (instance {self.settings.instance!r})")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
            )
        self._pid_path.write_text(f"{self._process.pid}\n")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self._running_pid() is None:
                raise LabError(f"FreeSWITCH exited during start-up:\n{self.log_tail()}")
            try:
                status = self.api("status", timeout=2.0)
            except (LabError, OSError) as exc:
                last = str(exc)
            else:
                if status.startswith("UP") and "ready" in status:
                    self._say(f"FreeSWITCH up: ESL {self.esl_host}:{self.esl_port}")
                    return
                last = status
            time.sleep(0.2)
        raise LabError(f"FreeSWITCH not ready after {timeout:.0f} s ({last}):\n{self.log_tail()}")

    def down(self, *, timeout: float = 15.0) -> None:
        """Stop FreeSWITCH (TERM, then KILL after ``timeout``), free its ports, unmount /proc."""
        pid = self._running_pid()
        if pid is not None:
            self._say(f"stopping FreeSWITCH pid {pid}")
            os.kill(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                self._say(f"FreeSWITCH pid {pid} ignored SIGTERM for {timeout:.0f} s: SIGKILL")
                os.kill(pid, signal.SIGKILL)
                self._wait_exit(pid, 5.0)
        own = self._process
        if own is not None and own.pid != pid and own.poll() is None:
            own.kill()
            own.wait(5.0)
        self._process = None
        if self._build is None and not self._has_build():
            return
        self._pid_path.unlink(missing_ok=True)
        self._umount_proc_if_unused()
        if pid is not None:
            self._wait_ports_released(timeout=5.0)

    def _has_build(self) -> bool:
        try:
            return self.build.is_built()
        except LabError:
            return False

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
                self._check_ports_free()
            except LabError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
            else:
                return

    def _running_pid(self) -> int | None:
        """Pid of this instance's FreeSWITCH if alive (checked against its command line)."""
        try:
            pid = int(self._pid_path.read_text().strip())
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
        if FREESWITCH.encode() in cmdline[:1] and self._conf_path.encode() in cmdline:
            return pid
        return None

    # ---- control ----------------------------------------------------------------------------
    def status(self) -> FreeswitchLabStatus:
        built = self._has_build()
        pid = self._running_pid() if built else None
        detail = "stopped"
        if pid is not None:
            try:
                detail = self.api("status", timeout=5.0).strip()
            except (LabError, OSError) as exc:
                detail = f"ESL does not answer: {exc}"
        return FreeswitchLabStatus(built=built, running=pid is not None, pid=pid, detail=detail)

    def api(self, command: str, *, timeout: float = 10.0) -> str:
        """Run one ESL ``api`` command (a blocking, one-shot connection) and return its body."""
        if "\n" in command or "\r" in command or "\0" in command:
            raise LabError("ESL command must be one line")
        with socket.create_connection((self.esl_host, self.esl_port), timeout=timeout) as sock:
            reader = _EslReader(sock)
            greeting = reader.message()
            if greeting[0].get("Content-Type") != "auth/request":
                raise LabError(f"unexpected ESL greeting {greeting[0]}")
            sock.sendall(f"auth {self.esl_password}\n\n".encode())
            reply = reader.message()
            if not reply[0].get("Reply-Text", "").startswith("+OK"):
                raise LabError(f"ESL auth refused: {reply[0].get('Reply-Text')}")
            sock.sendall(f"api {command}\n\n".encode())
            headers, body = reader.message()
            while headers.get("Content-Type") != "api/response":
                headers, body = reader.message()
            sock.sendall(b"exit\n\n")
            return body

    def log_tail(self, lines: int = 30) -> str:
        for path in (self.log_path, self.freeswitch_log_path):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if text.strip():
                return "\n".join(text.splitlines()[-lines:])
        return "(no log)"

    def originate_inbound(
        self, did: str, *, caller: str = "+31612345678", timeout_s: int = 20
    ) -> str:
        """The emulated carrier calls ``did`` on voicedock's profile (an INBOUND call for
        voicedock); blocks until voicedock answers. The caller's leg then runs ``lab_caller``
        (records what it hears as ``caller-<uuid>.wav``, speaks a tone burst, waits).
        Returns the caller leg's uuid."""
        for number in (did, caller):
            if not re.fullmatch(r"\+[1-9][0-9]{6,14}", number):
                raise LabError(f"not an E.164 number: {number!r}")
        leg = str(uuid.uuid4())
        reply = self.api(
            f"originate {{origination_uuid={leg},origination_caller_id_number={caller},"
            f"originate_timeout={int(timeout_s)}}}sofia/gateway/pstn/{did} "
            "lab_caller XML lab_carrier",
            timeout=timeout_s + 5.0,
        ).strip()
        if not reply.startswith("+OK"):
            raise LabError(f"inbound originate failed: {reply}")
        return leg

    def recording_of_caller(self, leg: str) -> Path:
        return self.recordings_dir / f"caller-{leg}.wav"


class _EslReader:
    """Blocking reader of ESL messages (headers, then a Content-Length body)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise LabError("ESL connection closed")
        self._buffer += chunk

    def message(self) -> tuple[dict[str, str], str]:
        while b"\n\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\n\n", 1)
        headers: dict[str, str] = {}
        for line in head.decode(errors="replace").splitlines():
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
        length = int(headers.get("Content-Length", "0"))
        while len(self._buffer) < length:
            self._fill()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return headers, body.decode(errors="replace")


def remove_instance(lab: LabFreeswitch) -> None:
    """Delete a stopped instance's directory (config, logs, recordings)."""
    if lab._running_pid() is not None:
        raise LabError(f"instance {lab.settings.instance!r} still runs")
    shutil.rmtree(lab.instance_dir, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
