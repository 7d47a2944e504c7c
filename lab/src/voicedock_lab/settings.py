"""Typed settings of the lab PBX: where the chroot lives, which ports, which credentials.

Everything binds 127.0.0.1 only; the address is fixed, not a setting, so a lab can never be
exposed by a typo. Several lab instances may share one chroot: each instance has its own
config, run, spool and database directories inside the chroot (see ``instance_dir``).
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from voicedock_lab.asterisk_versions import DEFAULT_VERSION, AsteriskBuild, asterisk_build

BIND_ADDRESS = "127.0.0.1"
# Where an Asterisk 16 lab's RTP range search starts, from where the Asterisk 22 lab's does.
_OTHER_VERSION_SHIFT = 7000
_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def default_cache_dir() -> Path:
    """``$VOICEDOCK_LAB_CACHE`` or ``~/.cache/voicedock/asterisk-chroot``."""
    override = os.environ.get("VOICEDOCK_LAB_CACHE")
    if override:
        return Path(override)
    return Path.home() / ".cache" / "voicedock" / "asterisk-chroot"


@dataclass(frozen=True)
class LabSettings:
    """Ports, credentials and paths of one lab Asterisk instance."""

    cache_dir: Path = field(default_factory=default_cache_dir)
    instance: str = "default"
    suite: str = "testing"
    mirror: str = "http://deb.debian.org/debian"
    http_port: int = 8088
    ami_port: int = 5038
    sip_port: int = 5060
    """Service side: where voicedock's trunk "carrier" sends from and inbound calls arrive."""
    carrier_sip_port: int = 5070
    """Emulated carrier side: the far end of the "carrier" trunk."""
    deadtrunk_port: int = 5099
    """Nothing listens here: the "deadtrunk" endpoint points at it."""
    media_ws_port: int = 8080
    """Where websocket_client.conf's ``voicedock_media`` connects (client-mode externalMedia):
    voicedock's own API port, which serves ``/media`` (8080 is ``server.port``'s default)."""
    rtp_start: int = 20000
    rtp_end: int = 20999
    ari_user: str = "voicedock"
    ari_password: str = "vd-ari-secret"  # noqa: S105 - lab-only credential on loopback
    ami_user: str = "voicedock"
    ami_secret: str = "vd-ami-secret"  # noqa: S105 - lab-only credential on loopback
    app_name: str = "voicedock"
    trunk_name: str = "carrier"
    service_dids: tuple[str, ...] = ("+31850835037", "+31850835038")
    asterisk: str = DEFAULT_VERSION
    """The Asterisk major version (``voicedock_lab.asterisk_versions``): 22 or 16, each in a
    chroot of its own in ``cache_dir``."""
    transmit_silence: bool = False
    """The far parties send silence while they say nothing (asterisk.conf ``transmit_silence``).
    Off, as a trunk or phone with silence suppression, a muted or held party: no frames at all
    between their words."""

    def __post_init__(self) -> None:
        if not _INSTANCE_NAME.match(self.instance):
            raise ValueError(f"lab instance: invalid name {self.instance!r}")
        asterisk_build(self.asterisk)
        ports = {
            "http_port": self.http_port,
            "ami_port": self.ami_port,
            "sip_port": self.sip_port,
            "carrier_sip_port": self.carrier_sip_port,
            "deadtrunk_port": self.deadtrunk_port,
            "media_ws_port": self.media_ws_port,
        }
        for key, port in ports.items():
            if not 1 <= port <= 65535:
                raise ValueError(f"lab {key}: {port} is not a TCP/UDP port")
        if len(set(ports.values())) != len(ports):
            raise ValueError(f"lab ports must be distinct: {ports}")
        if not 1024 <= self.rtp_start < self.rtp_end <= 65535:
            raise ValueError(f"lab rtp range: {self.rtp_start}-{self.rtp_end} is invalid")

    @property
    def bind_address(self) -> str:
        return BIND_ADDRESS

    @property
    def build(self) -> AsteriskBuild:
        """What this version's chroot holds (Debian suite, packages, modules it lacks)."""
        return asterisk_build(self.asterisk)

    @property
    def debian_suite(self) -> str:
        """The suite debootstrap installs: ``suite`` for Asterisk 22, the version's own else."""
        return self.suite if self.asterisk == DEFAULT_VERSION else self.build.suite

    @property
    def chroot_dir(self) -> Path:
        return self.cache_dir / self.build.chroot_name

    @property
    def instance_path(self) -> str:
        """The instance's directory as seen from inside the chroot."""
        return f"/var/lib/voicedock-lab/{self.instance}"

    @property
    def instance_dir(self) -> Path:
        """The instance's directory as seen from the host."""
        return self.chroot_dir / self.instance_path.lstrip("/")

    @property
    def recordings_path(self) -> str:
        """Recordings directory inside the chroot (MixMonitor and Record() write here)."""
        return f"{self.instance_path}/recordings"

    @property
    def recordings_dir(self) -> Path:
        """Recordings directory on the host."""
        return self.instance_dir / "recordings"

    @property
    def sounds_path(self) -> str:
        """The lab's own sounds (the speaking parties' utterances), inside the chroot."""
        return f"{self.instance_path}/sounds"

    @property
    def sounds_dir(self) -> Path:
        """The lab's own sounds directory on the host."""
        return self.instance_dir / "sounds"

    @property
    def ari_url(self) -> str:
        return f"http://{BIND_ADDRESS}:{self.http_port}/ari"

    @property
    def ari_events_url(self) -> str:
        return f"ws://{BIND_ADDRESS}:{self.http_port}/ari/events?app={self.app_name}"

    @property
    def saved_path(self) -> Path:
        """Where ``up`` records the settings it ran with, for later ``down``/``status``."""
        return self.instance_dir / "lab-settings.json"

    def to_json(self) -> str:
        data = asdict(self)
        data["cache_dir"] = str(self.cache_dir)
        data["service_dids"] = list(self.service_dids)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LabSettings:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["cache_dir"] = Path(values.get("cache_dir", default_cache_dir()))
        if "service_dids" in values:
            values["service_dids"] = tuple(values["service_dids"])
        return cls(**values)

    def saved_or_self(self) -> LabSettings:
        """The settings a running instance of this name was started with, else these."""
        try:
            return LabSettings.from_json(self.saved_path.read_text())
        except (OSError, ValueError, TypeError):
            return self

    def with_free_ports(self) -> LabSettings:
        """A copy whose TCP/UDP ports are free right now (for parallel test runs)."""
        ports = free_ports(6)
        # An Asterisk 16 lab of this process runs beside its Asterisk 22 lab: another range.
        shift = 0 if self.asterisk == DEFAULT_VERSION else _OTHER_VERSION_SHIFT
        rtp_base = free_port_range(200, shift=shift)
        return replace(
            self,
            http_port=ports[0],
            ami_port=ports[1],
            sip_port=ports[2],
            carrier_sip_port=ports[3],
            deadtrunk_port=ports[4],
            media_ws_port=ports[5],
            rtp_start=rtp_base,
            rtp_end=rtp_base + 199,
        )


def free_ports(count: int) -> list[int]:
    """Ports free for both TCP and UDP on 127.0.0.1, distinct, chosen by the kernel."""
    chosen: list[int] = []
    held: list[socket.socket] = []
    try:
        while len(chosen) < count:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(tcp)
            tcp.bind((BIND_ADDRESS, 0))
            port = int(tcp.getsockname()[1])
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(udp)
            try:
                udp.bind((BIND_ADDRESS, port))
            except OSError:
                continue
            chosen.append(port)
    finally:
        for sock in held:
            sock.close()
    return chosen


def free_port_range(
    size: int, low: int = 30000, high: int = 60000, *, half: int = 0, shift: int = 0
) -> int:
    """Start of an even-aligned UDP range of ``size`` ports that are free right now.

    The start depends on the process id, so two concurrent test runs pick different ranges.
    A PBX binds its RTP ports only during calls, so "free now" does not keep two labs of one
    process apart: each lab kind searches its own ``half`` (0 or 1) of the span, and two labs
    of one kind start their search ``shift`` ports apart.
    """
    span = (high - low) // 2 - size
    low += half * (high - low) // 2
    start = low + ((os.getpid() * 397 + shift) % span)
    for attempt in range(50):
        base = low + ((start - low + attempt * size) % span)
        base -= base % 2
        if _udp_range_free(base, size):
            return base
    raise OSError(f"no free UDP range of {size} ports between {low} and {high}")


def _udp_range_free(base: int, size: int) -> bool:
    held: list[socket.socket] = []
    try:
        for port in range(base, base + size):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(sock)
            sock.bind((BIND_ADDRESS, port))
    except OSError:
        return False
    finally:
        for sock in held:
            sock.close()
    return True
