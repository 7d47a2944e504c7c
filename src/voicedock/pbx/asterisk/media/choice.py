"""Which transport carries a server's call audio: ``choose_transport``.

Three ways exist, each an ARI ``externalMedia`` leg bridged with the call:

* ``websocket``: chan_websocket (Asterisk 20.16, 21.11, 22.6, 23.0 and later); voicedock
  connects to Asterisk (or, in client mode, Asterisk to voicedock) over HTTP;
* ``rtp``: UnicastRTP over UDP (``chan_rtp``; ``externalMedia`` exists from Asterisk 16.6):
  Asterisk sends the audio to a UDP port of voicedock's and voicedock to one of Asterisk's;
* ``audiosocket``: chan_audiosocket over TCP (Asterisk 18 and later, where built): Asterisk
  connects to voicedock.

``[pbx.asterisk] media_transport = "auto"`` takes the first the server has, in that order;
any other value is that transport alone. What the server has is its running modules
(``server_info``); a server whose modules could not be read is trusted with the transport
named, and with ``auto`` gets ``websocket`` only if its version has chan_websocket, else RTP.
A choice that is impossible says exactly what is missing and since which Asterisk it exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from voicedock.pbx.asterisk.server_info import AsteriskServerInfo, Release

__all__ = [
    "FACTS",
    "MEDIA_TRANSPORTS",
    "MediaTransport",
    "TransportChoice",
    "TransportFacts",
    "choose_transport",
]

MediaTransport = Literal["websocket", "rtp", "audiosocket"]
MEDIA_TRANSPORTS: Final[tuple[MediaTransport, ...]] = ("websocket", "rtp", "audiosocket")


@dataclass(frozen=True, slots=True)
class TransportFacts:
    """What is known of a transport: ``module``, the Asterisk module that carries it;
    ``shown``, its name in what voicedock says; ``lacking``, what a server older than its first
    release lacks (RTP's chan_rtp is older than the ARI resource that makes its legs,
    ``externalMedia``); ``since``, the Asterisk releases it exists from."""

    module: str
    shown: str
    lacking: str
    since: str


FACTS: Final[dict[MediaTransport, TransportFacts]] = {
    "websocket": TransportFacts(
        "chan_websocket", "chan_websocket", "chan_websocket", "Asterisk 20.16, 21.11, 22.6 and 23.0"
    ),
    "rtp": TransportFacts("chan_rtp", "RTP", "ARI externalMedia", "Asterisk 16.6"),
    "audiosocket": TransportFacts(
        "chan_audiosocket", "AudioSocket", "chan_audiosocket", "Asterisk 18.0"
    ),
}
# chan_websocket's first release per major version (none before 20; every 23 has it).
_WEBSOCKET_FROM: Final[dict[int, int]] = {20: 16, 21: 11, 22: 6}
_EXTERNAL_MEDIA: Final[Release] = (16, 6, 0)
_AUDIOSOCKET: Final[Release] = (18, 0, 0)


@dataclass(frozen=True, slots=True)
class TransportChoice:
    transport: MediaTransport | None
    """``None``: the server can carry no call audio (``reason`` says what to install)."""
    reason: str


def _released(transport: MediaTransport, release: Release | None) -> bool | None:
    """Whether a server of ``release`` can have ``transport`` at all (``None``: unknown)."""
    if release is None:
        return None
    if transport == "websocket":
        major, minor = release[0], release[1]
        return major >= 23 or minor >= _WEBSOCKET_FROM.get(major, 1000)
    return release >= (_EXTERNAL_MEDIA if transport == "rtp" else _AUDIOSOCKET)


def _missing(transport: MediaTransport, info: AsteriskServerInfo) -> str | None:
    """Why the server cannot carry ``transport``; ``None`` if it can (or may)."""
    facts = FACTS[transport]
    if _released(transport, info.release) is False:
        return f"no {facts.lacking}: it exists from {facts.since} on"
    if info.has(facts.module) is False:
        module = facts.module
        return f"{module}.so is not loaded (modules.conf: load = {module}.so)"
    return None


def choose_transport(setting: str, info: AsteriskServerInfo) -> TransportChoice:
    """The transport for ``[pbx.asterisk] media_transport = setting`` on the server ``info``."""
    named = f"Asterisk {info.version}" if info.version else "Asterisk (version unknown)"
    if setting != "auto":
        transport = next(t for t in MEDIA_TRANSPORTS if t == setting)
        missing = _missing(transport, info)
        if missing is not None:
            return TransportChoice(None, f"{named}: media_transport = {setting!r}, but {missing}")
        chosen = f"{named}: media over {FACTS[transport].shown} (media_transport)"
        return TransportChoice(transport, chosen)
    if info.modules is None:  # trust the version alone, and only with what it surely has
        candidates: tuple[MediaTransport, ...] = (
            ("websocket",) if _released("websocket", info.release) else ("rtp",)
        )
    else:
        candidates = MEDIA_TRANSPORTS
    passed: list[str] = []
    for transport in candidates:
        missing = _missing(transport, info)
        if missing is None:
            why = f" ({'; '.join(passed)})" if passed else ""
            return TransportChoice(transport, f"{named}: media over {FACTS[transport].shown}{why}")
        passed.append(missing)
    return TransportChoice(None, f"{named} can carry no call audio: " + "; ".join(passed))
