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

import re
import shutil
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from voicedock_lab import freeswitch_build, freeswitch_sources
from voicedock_lab.chroot_process import ChrootDaemon, DaemonSpec
from voicedock_lab.config import find_project_root
from voicedock_lab.errors import LabError
from voicedock_lab.freeswitch_build import FREESWITCH_PREFIX, FreeswitchBuild
from voicedock_lab.freeswitch_config import FreeswitchLabSettings, render_freeswitch_xml
from voicedock_lab.settings import BIND_ADDRESS
from voicedock_lab.settings import default_cache_dir as utterance_cache_dir
from voicedock_lab.utterances import install_utterances

FREESWITCH = f"{FREESWITCH_PREFIX}/bin/freeswitch"
_INSTANCE_SUBDIRS = (
    "conf",
    "log",
    "db",
    "run",
    "temp",
    "recordings",
    "storage",
    "cache",
    "sounds",
)
_FLAG_DIRS = ("conf", "log", "db", "run", "temp", "storage", "cache", "recordings")


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
        utterances: bool = True,
    ) -> None:
        """``utterances=False`` skips the speaking parties' sounds (they need Piper)."""
        self.settings = settings or FreeswitchLabSettings()
        self._utterances = utterances
        self._sources_dir = sources_dir
        self._cache_dir = cache_dir
        self._project_root = project_root
        self._verbose = verbose
        self._daemon = ChrootDaemon("FreeSWITCH", self._daemon_spec, say=self._say, mount_proc=True)
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
        """The cached build for the current archives (``LabError`` if they are missing; this
        downloads nothing, ``up`` does)."""
        if self._build is None:
            sources = freeswitch_sources.locate(
                self._sources_dir, self._cache_dir, download=False, log=self._verbose
            )
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
    def sounds_dir(self) -> Path:
        return self.instance_dir / "sounds"

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

    def _daemon_spec(self) -> DaemonSpec:
        s = self.settings
        inst = s.instance_path
        return DaemonSpec(
            instance=s.instance,
            root=self.root,
            binary=FREESWITCH,
            # -conf <inst>/conf, -log <inst>/log, ...: each flag names its directory.
            args=(
                "-nc",
                "-nf",
                "-nonat",
                "-np",
                *(a for d in _FLAG_DIRS for a in (f"-{d}", f"{inst}/{d}")),
            ),
            identity=self._conf_path,
            pid_path=self._pid_path,
            log_path=self.log_path,
            ports=(
                (socket.SOCK_STREAM, s.esl_port),
                (socket.SOCK_DGRAM, s.sip_port),
                (socket.SOCK_STREAM, s.sip_port),
                (socket.SOCK_DGRAM, s.carrier_sip_port),
                (socket.SOCK_STREAM, s.carrier_sip_port),
            ),
        )

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

    def located(self) -> LabFreeswitch:
        """This lab for ``down``, ``status`` and ``cli``, which need no sources: in the cached
        build where an instance of its name runs (whichever sources built it), with the settings
        it was started with; else in the build of the sources found now, else in the newest
        cached build (none: nothing of it runs)."""
        for cached in freeswitch_build.cached_builds(self._cache_dir):
            self._build = cached
            if self._daemon.running_pid() is not None:
                return self.saved_or_self()
        self._build = None
        if not self._has_build():
            self._build = next(iter(freeswitch_build.cached_builds(self._cache_dir)), None)
            if self._build is None:
                return self
        return self.saved_or_self()

    # ---- lifecycle --------------------------------------------------------------------------
    def up(self, *, timeout: float = 30.0) -> None:
        """Build (cached), configure and start FreeSWITCH; return once its Event Socket answers."""
        sources = freeswitch_sources.locate(self._sources_dir, self._cache_dir, log=self._verbose)
        self._build, spent = freeswitch_build.build(sources, self._cache_dir, log=self._verbose)
        self.build_seconds = spent
        if spent > 1.0:
            self._say(f"built FreeSWITCH in {spent:.0f} s")
        if self._daemon.running_pid() is not None:
            self._say(f"instance {self.settings.instance!r} already running")
            return
        self.configure()
        if self._utterances:
            self.install_sounds()
        self._daemon.check_ports_free()
        self.saved_path.write_text(self.settings.to_json())
        self.saved_path.chmod(0o600)  # it holds the ESL password
        self._daemon.start()  # mounts the chroot's /proc first
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

    def install_sounds(self) -> None:
        """The speaking parties' utterances (Piper; synthesised once per machine, in the same
        cache as the lab Asterisk's), played with ``playback ${SOUNDS}/<name>.wav``;
        ``LabError`` without Piper."""
        install_utterances(utterance_cache_dir(), self.sounds_dir)

    def _wait_ready(self, timeout: float) -> None:
        last = ""

        def ready(_seconds_left: float) -> bool:
            nonlocal last
            try:
                last = self.api("status", timeout=2.0)
            except (LabError, OSError) as exc:
                last = str(exc)
                return False
            return last.startswith("UP") and "ready" in last

        if not self._daemon.wait_ready(
            ready, timeout=timeout, interval=0.2, log_tail=self.log_tail
        ):
            raise LabError(
                f"FreeSWITCH not ready after {timeout:.0f} s ({last}):\n{self.log_tail()}"
            )
        self._say(f"FreeSWITCH up: ESL {self.esl_host}:{self.esl_port}")

    def down(self, *, timeout: float = 15.0) -> None:
        """Stop FreeSWITCH (TERM, then KILL after ``timeout``), free its ports, unmount /proc."""
        self._daemon.stop(timeout)

    def _has_build(self) -> bool:
        try:
            return self.build.is_built()
        except LabError:
            return False

    # ---- control ----------------------------------------------------------------------------
    def status(self) -> FreeswitchLabStatus:
        built = self._has_build()
        pid = self._daemon.running_pid() if built else None
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
        self,
        did: str,
        *,
        caller: str = "+31612345678",
        timeout_s: int = 20,
        speaks: bool = False,
        domain: str | None = None,
    ) -> str:
        """The emulated carrier calls ``did`` on voicedock's profile (an INBOUND call for
        voicedock); blocks until voicedock answers. The caller's leg then runs ``lab_caller``
        (records what it hears as ``caller-<uuid>.wav``, speaks a tone burst, waits), or with
        ``speaks`` ``lab_caller_speaks`` (says the appointment utterance instead).
        ``domain``: the host of the INVITE's Request-URI (``sip:<did>@<domain>``, routed to
        voicedock's profile; else the gateway's). Returns the caller leg's uuid."""
        for number in (did, caller):
            if not re.fullmatch(r"\+[1-9][0-9]{6,14}", number):
                raise LabError(f"not an E.164 number: {number!r}")
        leg = str(uuid.uuid4())
        target = f"sofia/gateway/pstn/{did}"
        route = ""
        if domain is not None:
            if not re.fullmatch(r"[a-z0-9.-]{1,253}", domain):
                raise LabError(f"not a domain name: {domain!r}")
            target = f"sofia/carrier/{did}@{domain}"
            route = f",sip_invite_route_uri=<sip:127.0.0.1:{self.settings.sip_port};lr>"
        reply = self.api(
            f"originate {{origination_uuid={leg},origination_caller_id_number={caller},"
            f"originate_timeout={int(timeout_s)}{route}}}{target} "
            f"{'lab_caller_speaks' if speaks else 'lab_caller'} XML lab_carrier",
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
    if lab._daemon.running_pid() is not None:
        raise LabError(f"instance {lab.settings.instance!r} still runs")
    shutil.rmtree(lab.instance_dir, ignore_errors=True)
