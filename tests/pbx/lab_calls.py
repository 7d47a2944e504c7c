"""Helpers for the Asterisk integration tests: an AsteriskPbx on the lab and an event recorder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from voicedock.backoff import Backoff
from voicedock.calls.transfers.agent import AgentDialogue
from voicedock.config import AsteriskSettings
from voicedock.domain.ids import new_outbound_call_id
from voicedock.pbx.asterisk.ami.client import AmiClient
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.pbx.base import OriginateRequest, PbxEvent, PbxEventKind
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import free_port_range, free_ports

ANSWERS = "+31612345678"
ECHOES = "+31612345677"  # records, returns what it hears
BUSY = "+31610000486"
NO_ANSWER = "+31610000480"
CONGESTION = "+31610000503"
REJECTED = "+31610000403"
UNKNOWN = "+31610000404"
CALLER = "+31850835037"


# voicedock's own RTP ports and AudioSocket port in the tests: apart from the labs' RTP ranges
# (``free_port_range`` between 30000 and 60000), one set per test process.
_MEDIA_PORTS: list[tuple[int, int, int]] = []


def _media_ports() -> tuple[int, int, int]:
    if not _MEDIA_PORTS:
        low = free_port_range(200, low=20000, high=30000)
        _MEDIA_PORTS.append((low, low + 199, free_ports(1)[0]))
    return _MEDIA_PORTS[0]


def lab_settings(
    lab: LabAsterisk, originate_via: str = "ari", media_transport: str = "auto"
) -> AsteriskSettings:
    """What voicedock's ``[pbx.asterisk]`` says for the lab ``lab``: ``media_transport``
    forces one way for the calls' audio (``auto``: what the lab's Asterisk offers first)."""
    ari_user, ari_password = lab.ari_credentials
    ami_user, ami_secret = lab.ami_credentials
    rtp_low, rtp_high, audiosocket = _media_ports()
    return AsteriskSettings(
        media_transport=media_transport,  # type: ignore[arg-type]
        rtp_port_min=rtp_low,
        rtp_port_max=rtp_high,
        audiosocket_port=audiosocket,
        ari_url=lab.ari_url,
        ari_user=ari_user,
        ari_password=ari_password,
        app=lab.settings.app_name,
        ami_host=lab.ami_host,
        ami_port=lab.ami_port,
        ami_user=ami_user,
        ami_secret=ami_secret,
        originate_via="ami" if originate_via == "ami" else "ari",
    )


def new_call_id() -> str:
    return new_outbound_call_id()  # the engine's own shape: the adapters refuse any other


def request(destination: str, call_id: str | None = None, timeout: int = 10) -> OriginateRequest:
    return OriginateRequest(
        call_id=call_id or new_call_id(),
        destination=destination,
        caller_id=CALLER,
        trunk_endpoint="carrier",
        timeout_seconds=timeout,
    )


class Recorder:
    """A PbxEventSink that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[PbxEvent] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: PbxEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def of(self, call_id: str, kind: PbxEventKind | None = None) -> list[PbxEvent]:
        return [e for e in self.events if e.call_id == call_id and (kind is None or e.kind == kind)]

    async def wait(self, call_id: str, kind: PbxEventKind, within: float = 10.0) -> PbxEvent:
        async with asyncio.timeout(within), self._changed:
            while True:
                found = self.of(call_id, kind)
                if found:
                    return found[0]
                await self._changed.wait()


@asynccontextmanager
async def running_pbx(
    lab: LabAsterisk, originate_via: str = "ari", *, backoff: float = 0.05
) -> AsyncIterator[tuple[AsteriskPbx, Recorder]]:
    settings = lab_settings(lab, originate_via)
    ari = AriClient(settings, heartbeat=2.0, backoff=Backoff(initial=backoff, cap=1.0))
    ami = AmiClient(
        settings, ping_interval=1.0, ping_timeout=1.0, backoff=Backoff(initial=backoff, cap=1.0)
    )
    pbx = AsteriskPbx(
        settings,
        ari=ari,
        ami=ami,
        use_ami=originate_via == "ami",
        warm_dialogue=AgentDialogue(),  # as the service wires it
    )
    recorder = Recorder()
    await pbx.start(recorder)
    try:
        await pbx.ari.wait_registered(10)
        if pbx.ami is not None:
            await pbx.ami.wait_connected(10)
        yield pbx, recorder
    finally:
        await pbx.aclose()
