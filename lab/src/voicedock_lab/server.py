"""Run the lab Asterisk: provision the chroot, write the instance config, start, wait, stop.

Asterisk runs as ``setsid chroot <root> /usr/sbin/asterisk -C <instance>/etc/asterisk.conf -f -n
-U asterisk -G asterisk``. ``chroot`` execs Asterisk, so the pid we record is Asterisk's own.
``-U root`` would not work: Asterisk drops all capabilities but CAP_NET_ADMIN after -U and can
then no longer write its (asterisk-owned) database directory.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voicedock_lab import provision
from voicedock_lab.ami_probe import AmiProbe
from voicedock_lab.chroot_process import ChrootDaemon, DaemonSpec
from voicedock_lab.config import find_project_root, render_files
from voicedock_lab.errors import LabError
from voicedock_lab.settings import BIND_ADDRESS, LabSettings
from voicedock_lab.utterances import install_utterances

ASTERISK = "/usr/sbin/asterisk"
# Debian's Asterisk 22 keeps its modules in the multiarch directory, bullseye's 16 in
# /usr/lib/asterisk/modules: astmoddir must name the one that holds them (on 16 a wrong one
# loads no ARI module at all).
MODULE_DIR_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/asterisk/modules",
    "/usr/lib/aarch64-linux-gnu/asterisk/modules",
    "/usr/lib/asterisk/modules",
)
_INSTANCE_SUBDIRS = ("lib", "spool", "spool/monitor", "spool/tmp", "run", "log", "cache")


@dataclass(frozen=True)
class LabStatus:
    provisioned: bool
    running: bool
    pid: int | None
    detail: str


class LabAsterisk:
    """The lab PBX. ``up()`` is idempotent, ``down()`` too; also a context manager."""

    def __init__(
        self,
        settings: LabSettings | None = None,
        *,
        project_root: Path | None = None,
        verbose: bool = True,
        utterances: bool = True,
    ) -> None:
        """``utterances=False`` skips the speaking parties' sounds (they need Piper)."""
        self.settings = settings or LabSettings()
        self._utterances = utterances
        self._project_root = project_root
        self._verbose = verbose
        self._daemon = ChrootDaemon("Asterisk", self._daemon_spec, say=self._say)

    def __enter__(self) -> LabAsterisk:
        self.up()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.down()

    # ---- where things are -------------------------------------------------------------------
    @property
    def ari_url(self) -> str:
        return self.settings.ari_url

    @property
    def ari_events_url(self) -> str:
        return self.settings.ari_events_url

    @property
    def ari_credentials(self) -> tuple[str, str]:
        return self.settings.ari_user, self.settings.ari_password

    @property
    def ami_host(self) -> str:
        return BIND_ADDRESS

    @property
    def ami_port(self) -> int:
        return self.settings.ami_port

    @property
    def ami_credentials(self) -> tuple[str, str]:
        return self.settings.ami_user, self.settings.ami_secret

    @property
    def recordings_dir(self) -> Path:
        return self.settings.recordings_dir

    @property
    def log_path(self) -> Path:
        return self.settings.instance_dir / "asterisk.stdout"

    @property
    def _pid_path(self) -> Path:
        return self.settings.instance_dir / "asterisk.pid"

    @property
    def _conf_path(self) -> str:
        return f"{self.settings.instance_path}/etc/asterisk.conf"

    def _daemon_spec(self) -> DaemonSpec:
        s = self.settings
        return DaemonSpec(
            instance=s.instance,
            root=s.chroot_dir,
            binary=ASTERISK,
            args=("-C", self._conf_path, "-f", "-n", "-U", "asterisk", "-G", "asterisk"),
            identity=self._conf_path,
            pid_path=self._pid_path,
            log_path=self.log_path,
            ports=(
                (socket.SOCK_STREAM, s.http_port),
                (socket.SOCK_STREAM, s.ami_port),
                (socket.SOCK_DGRAM, s.sip_port),
                (socket.SOCK_DGRAM, s.carrier_sip_port),
            ),
        )

    def _say(self, message: str) -> None:
        if self._verbose:
            print(f"[lab] {message}", flush=True)

    # ---- lifecycle --------------------------------------------------------------------------
    def up(self, *, timeout: float = 30.0) -> None:
        """Provision (cached), configure and start Asterisk; return once ARI answers."""
        spent = provision.provision(self.settings, log=self._verbose)
        if spent > 1.0:
            self._say(f"provisioned the chroot in {spent:.1f} s")
        if self._daemon.running_pid() is not None:
            self._say(f"instance {self.settings.instance!r} already running")
            return
        self.configure()
        if self._utterances:
            self.install_sounds()
        self._daemon.check_ports_free()
        self.settings.saved_path.write_text(self.settings.to_json())
        self._daemon.start()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.down()
            raise

    def configure(self) -> None:
        """(Re)write the instance directory: config files and writable run/spool dirs."""
        root = self.settings.chroot_dir
        moddir, available = module_dir(root)
        project = self._project_root or find_project_root()
        files = render_files(self.settings, project, available, moddir)
        uid, gid = _asterisk_ids(root)
        inst = self.settings.instance_dir
        etc = inst / "etc"
        if etc.exists():
            shutil.rmtree(etc)
        etc.mkdir(parents=True, mode=0o755)
        for parent in (inst, *inst.parents):
            if parent == root:
                break
            parent.chmod(0o755)
        dist_indications = root / "etc/asterisk/indications.conf"
        if dist_indications.exists():
            files.setdefault("indications.conf", dist_indications.read_text())
        for name, text in files.items():
            path = etc / name
            path.write_text(text)
            # Asterisk runs as "asterisk": configs must be world-readable (0640 root fails).
            path.chmod(0o644)
        for sub in (*_INSTANCE_SUBDIRS, "recordings"):
            path = inst / sub
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, uid, gid)
            path.chmod(0o755)

    def install_sounds(self) -> None:
        """The speaking parties' utterances (Piper, once per machine); LabError without Piper."""
        install_utterances(self.settings.cache_dir, self.settings.sounds_dir)

    def _wait_ready(self, timeout: float) -> None:
        booted = False

        def ready(seconds_left: float) -> bool:
            nonlocal booted
            if not booted:
                result = self._rx("core waitfullybooted", timeout=max(1.0, seconds_left))
                booted = result.returncode == 0 and "fully booted" in result.stdout
            return booted and self._ari_answers()

        if not self._daemon.wait_ready(
            ready, timeout=timeout, interval=0.1, log_tail=self.log_tail
        ):
            raise LabError(f"Asterisk not ready after {timeout:.0f} s:\n{self.log_tail()}")
        self._say(f"Asterisk up: ARI {self.ari_url}, AMI {self.ami_host}:{self.ami_port}")

    def _ari_answers(self) -> bool:
        token = base64.b64encode(f"{self.settings.ari_user}:{self.settings.ari_password}".encode())
        request = urllib.request.Request(  # noqa: S310 - fixed http://127.0.0.1 URL
            f"{self.ari_url}/asterisk/info",
            headers={"Authorization": f"Basic {token.decode()}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def down(self, *, timeout: float = 10.0) -> None:
        """Stop Asterisk (TERM, then KILL after ``timeout``) and check its ports are free."""
        self._daemon.stop(timeout)

    # ---- control ----------------------------------------------------------------------------
    def running(self) -> bool:
        """Whether this instance's Asterisk runs (its pid file names a live Asterisk of ours)."""
        return self._daemon.running_pid() is not None

    def status(self) -> LabStatus:
        provisioned = provision.is_provisioned(self.settings)
        pid = self._daemon.running_pid()
        detail = "stopped"
        if pid is not None:
            result = self._rx("core show uptime", timeout=5.0)
            detail = result.stdout.strip() or result.stderr.strip()
        return LabStatus(provisioned=provisioned, running=pid is not None, pid=pid, detail=detail)

    def cli(self, command: str, *, timeout: float = 10.0) -> str:
        """Run one Asterisk CLI command (``asterisk -rx``) and return its output."""
        if self._daemon.running_pid() is None:
            raise LabError(f"lab instance {self.settings.instance!r} is not running")
        result = self._rx(command, timeout=timeout)
        if result.returncode != 0:
            raise LabError(f"CLI {command!r} failed: {result.stderr.strip() or result.stdout}")
        return result.stdout

    def _rx(self, command: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
        argv = ["chroot", str(self.settings.chroot_dir), ASTERISK, "-C", self._conf_path]
        try:
            return subprocess.run(  # noqa: S603 - fixed argv
                [*argv, "-rx", command],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"CLI {command!r} timed out after {timeout:.0f} s") from exc

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def originate_inbound(
        self,
        did: str,
        *,
        caller: str = "+31612345678",
        tag: str | None = None,
        timeout_s: int = 30,
        domain: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> str:
        """The emulated carrier calls ``did`` on the service side (an INBOUND call for voicedock).

        The caller side runs ``lab-caller`` once answered: it records both directions as
        ``caller-<tag>*.wav``, plays hello-world + demo-thanks and waits. Returns the caller
        side's channel id. The tag also travels as the X-Voicedock-Tag SIP header. ``domain``:
        the host of the INVITE's Request-URI (``sip:<did>@<domain>``; else the service side's
        address). ``headers``: more SIP headers the INVITE carries, as a carrier adds them
        (``Identity``, ``P-Asserted-Identity``).
        """
        tag = tag or uuid.uuid4().hex[:12]
        channel_id = f"lab-caller-{tag}"
        dialed = f"PJSIP/{did}@pstn" if domain is None else f"PJSIP/pstn-domain/sip:{did}@{domain}"
        fields = [
            ("Channel", dialed),
            ("CallerID", caller),
            ("Context", "lab-caller"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Async", "true"),
            ("Timeout", str(timeout_s * 1000)),
            ("ChannelId", channel_id),
            ("Variable", f"LAB_TAG={tag}"),
            ("Variable", f"PJSIP_HEADER(add,X-Voicedock-Tag)={tag}"),
            *(("Variable", f"PJSIP_HEADER(add,{name})={value}") for name, value in headers),
        ]
        with AmiProbe(self.ami_host, self.ami_port) as ami:
            ami.login(*self.ami_credentials)
            reply = ami.action("Originate", fields)
            ami.action("Logoff", {})
        if reply.get("Response") != "Success":
            raise LabError(f"inbound originate refused: {reply.get('Message', reply)}")
        return channel_id


def module_dir(root: Path) -> tuple[str, list[str]]:
    """The chroot's Asterisk module directory (as seen inside it) and its modules' names: the
    first of ``MODULE_DIR_CANDIDATES`` that holds modules (an empty one does not count)."""
    for candidate in MODULE_DIR_CANDIDATES:
        names = sorted(p.stem for p in (root / candidate.lstrip("/")).glob("*.so"))
        if names:
            return candidate, names
    raise LabError(f"no Asterisk module directory in {root}")


def _asterisk_ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "asterisk" and len(fields) > 3:
            return int(fields[2]), int(fields[3])
    raise LabError(f"no 'asterisk' user in {root}/etc/passwd")
