"""The PBX backends the call contract runs against, behind one small test-side interface.

* ``freeswitch-fake``: ``FreeswitchPbx`` over the in-process fake FreeSWITCH (ESL and
  mod_audio_stream byte for byte); always available, about a second for the whole suite.
* ``asterisk-lab``: ``AsteriskPbx`` over the real lab Asterisk (``tests/asterisk/conftest.py``
  ``lab`` fixture): skipped when the lab cannot run here, a failure under ``CI=true``.

A backend names its parties by role (answers, busy, echo, ...) so that one test body holds
both PBXs to the same outcome. ``inbound`` places a call *into* voicedock (to one of the
backend's DIDs), makes that caller speak, and tells what the caller heard.

Call ids are the engine's own (``new_outbound_call_id`` / ``new_inbound_call_id``, as the
engine hands them to the PBX), never uuids: a PBX must not assume its channel id is the call id.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from e2e.audio_helpers import read_finished_recording
from voicedock.domain.ids import new_inbound_call_id, new_outbound_call_id
from voicedock.pbx.base import OriginateRequest, PbxEvent, PbxEventKind, TransferTarget

ROLES = ("answers", "busy", "congestion", "rejected", "invalid", "no-answer", "echo", "hangs-up")


class Recorder:
    """A ``PbxEventSink`` that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[PbxEvent] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: PbxEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def of(self, call_id: str, kind: PbxEventKind | None = None) -> list[PbxEvent]:
        return [e for e in self.events if e.call_id == call_id and kind in (None, e.kind)]

    async def wait(self, call_id: str, kind: PbxEventKind, within: float = 10.0) -> PbxEvent:
        async with asyncio.timeout(within), self._changed:
            while not self.of(call_id, kind):
                await self._changed.wait()
        return self.of(call_id, kind)[0]


class InboundCaller(Protocol):
    """A party that calls one of voicedock's numbers (``did``) through the PBX."""

    did: str

    async def call(self) -> str:
        """Place the call; returns the caller's reference for ``speak`` and ``heard``."""
        ...

    async def speak(self, ref: str) -> None:
        """Make the caller say something (once voicedock's media is attached)."""
        ...

    async def heard(self, ref: str) -> tuple[bytes, int]:
        """16-bit mono PCM the caller heard and its rate (after the call ended)."""
        ...


def sine(hz: float, seconds: float, rate: int, amplitude: float = 10000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * amplitude).astype("<i2").tobytes()


class FakeInboundCaller:
    """The fake FreeSWITCH parks a call to ``did``; the caller speaks over its audio stream and
    hears what ``uuid_broadcast`` queued on its channel."""

    def __init__(self, fake: Any, did: str) -> None:
        self.fake = fake
        self.did = did

    caller = "+31623731537"  # E.164: the inbound call id holds it (call-_+316..._<12>)

    async def call(self) -> str:
        return str(self.fake.inbound_call(self.did, caller=self.caller))

    async def speak(self, ref: str) -> None:
        async with asyncio.timeout(5):
            while ref not in self.fake.streams_by_uuid:
                await asyncio.sleep(0.01)
        stream = self.fake.streams_by_uuid[ref]
        stream.send_audio(sine(300, 0.5, stream.sample_rate))

    async def heard(self, ref: str) -> tuple[bytes, int]:
        streams = [s for s in self.fake.audio_streams if s.channel_uuid == ref]
        return self.fake.heard_audio(ref), streams[-1].sample_rate if streams else 8000


class LabInboundCaller:
    """The lab's emulated carrier calls a service DID; its ``lab-caller`` context plays
    hello-world and records what it receives as ``caller-<tag>-rx.wav``."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.did = str(lab.settings.service_dids[0])

    async def call(self) -> str:
        tag = uuid.uuid4().hex[:12]
        await asyncio.to_thread(self.lab.originate_inbound, self.did, tag=tag)
        return tag

    async def speak(self, ref: str) -> None:
        return None  # the lab caller's prompt plays on its own once answered

    async def heard(self, ref: str) -> tuple[bytes, int]:
        path = Path(self.lab.recordings_dir) / f"caller-{ref}-rx.wav"
        return await read_finished_recording(path)


@dataclass
class Backend:
    name: str
    pbx: Any  # a Pbx and MediaPbx
    events: Any  # Recorder (or the lab's, which has the same of()/wait())
    numbers: dict[str, str]  # role -> destination
    trunk: str
    caller_id: str
    transfer_target: TransferTarget
    busy_transfer_target: TransferTarget
    warm_transfer_target: TransferTarget  # an agent who answers and accepts (presses 1)
    inbound: InboundCaller
    inbound_caller: str  # the E.164 the inbound caller calls from

    def new_call_id(self) -> str:
        return new_outbound_call_id()

    def new_inbound_call_id(self) -> str:
        return new_inbound_call_id(self.inbound_caller)

    def request(self, role: str, timeout: int = 10) -> OriginateRequest:
        return OriginateRequest(
            call_id=self.new_call_id(),
            destination=self.numbers[role],
            caller_id=self.caller_id,
            trunk_endpoint=self.trunk,
            timeout_seconds=timeout,
        )


@asynccontextmanager
async def freeswitch_fake() -> AsyncIterator[Backend]:
    from pbx.freeswitch.fake_freeswitch import FakeFreeswitch
    from pbx.freeswitch.test_pbx_outbound import PASSWORD, make_pbx

    numbers = {role: f"+1555000{i:04d}" for i, role in enumerate(ROLES)}
    did = "+15557650000"  # voicedock's number: parked calls to it are offered to the engine
    async with FakeFreeswitch(password=PASSWORD) as fake:
        outcomes = {"busy": "busy", "congestion": "congestion", "rejected": "rejected"}
        outcomes |= {"invalid": "unallocated", "no-answer": "no_answer"}
        for role, outcome in outcomes.items():
            fake.destinations[numbers[role]] = outcome
        fake.echo_destinations.add(numbers["echo"])
        fake.hang_up_after[numbers["hangs-up"]] = 0.3
        fake.agent_presses["sales"] = "1"  # the warm transfer's agent accepts
        events = Recorder()
        async with make_pbx(fake, dids=[did]) as pbx:
            await pbx.start(events)
            yield Backend(
                "freeswitch-fake",
                pbx,
                events,
                numbers,
                trunk="carrier1",
                caller_id="+15557654321",
                transfer_target=TransferTarget("+15559990000", trunk_endpoint="carrier2"),
                busy_transfer_target=TransferTarget(numbers["busy"], trunk_endpoint="carrier2"),
                warm_transfer_target=TransferTarget("sales", internal=True, mode="warm"),
                inbound=FakeInboundCaller(fake, did),
                inbound_caller=FakeInboundCaller.caller,
            )


@asynccontextmanager
async def asterisk_lab(lab: Any) -> AsyncIterator[Backend]:
    from pbx import lab_calls

    numbers = {
        "answers": lab_calls.ANSWERS,
        "busy": lab_calls.BUSY,
        "congestion": lab_calls.CONGESTION,
        "rejected": lab_calls.REJECTED,
        "invalid": lab_calls.UNKNOWN,
        "no-answer": lab_calls.NO_ANSWER,
        "echo": "+31612345670",
        "hangs-up": "+31612345671",
    }
    async with lab_calls.running_pbx(lab) as (pbx, events):  # the same of()/wait() API
        yield Backend(
            "asterisk-lab",
            pbx,
            events,
            numbers,
            trunk="carrier",
            caller_id=lab_calls.CALLER,
            transfer_target=TransferTarget(lab_calls.ANSWERS),
            busy_transfer_target=TransferTarget("busyagent", internal=True),
            warm_transfer_target=TransferTarget("warmaccept", internal=True, mode="warm"),
            inbound=LabInboundCaller(lab),
            inbound_caller=lab_calls.ANSWERS,  # the lab carrier calls from this number
        )


class FreeswitchLabInboundCaller:
    """The lab FreeSWITCH's emulated carrier calls a service DID; its ``lab_caller`` extension
    records what it hears as ``caller-<uuid>.wav`` and speaks a tone burst after 1 s."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.did = str(lab.settings.service_dids[0])

    caller = "+31623731537"

    async def call(self) -> str:
        return str(
            await asyncio.to_thread(self.lab.originate_inbound, self.did, caller=self.caller)
        )

    async def speak(self, ref: str) -> None:
        return None  # the lab caller speaks on its own once answered

    async def heard(self, ref: str) -> tuple[bytes, int]:
        path = Path(self.lab.recording_of_caller(ref))
        return await read_finished_recording(path)


@asynccontextmanager
async def _hung_up_after(lab: Any) -> AsyncIterator[None]:
    """Every leg a test leaves up (a transferred call stays bridged to its target) is hung up
    when it ends: each leg holds lab RTP ports, and a run out of them fails the next test's
    originate ("No audio RTP ports available!")."""
    try:
        yield
    finally:
        await asyncio.to_thread(lab.api, "hupall NORMAL_CLEARING")


@asynccontextmanager
async def freeswitch_lab(lab: Any) -> AsyncIterator[Backend]:
    """``FreeswitchPbx`` on the real lab FreeSWITCH (``tests/freeswitch_lab_session.py``)."""
    from voicedock.config import FreeswitchSettings
    from voicedock.pbx.freeswitch.pbx import FreeswitchPbx
    from voicedock_lab import freeswitch_config as parties

    numbers = {
        "answers": parties.ANSWERS,
        "busy": parties.BUSY,
        "congestion": parties.CONGESTION,
        "rejected": parties.REJECTED,
        "invalid": parties.UNKNOWN,
        "no-answer": parties.NO_ANSWER,
        "echo": parties.ECHO,
        "hangs-up": parties.HANGS_UP,
    }
    settings = FreeswitchSettings(
        esl_port=lab.esl_port, esl_password=lab.esl_password, media_port=0
    )
    inbound = FreeswitchLabInboundCaller(lab)
    events = Recorder()
    async with FreeswitchPbx(settings, dids=[inbound.did]) as pbx, _hung_up_after(lab):
        await pbx.start(events)
        yield Backend(
            "freeswitch-lab",
            pbx,
            events,
            numbers,
            trunk=lab.settings.trunk_name,
            caller_id=lab.settings.service_dids[0],
            transfer_target=TransferTarget(parties.ANSWERS, trunk_endpoint=lab.settings.trunk_name),
            busy_transfer_target=TransferTarget("busyagent", internal=True),
            warm_transfer_target=TransferTarget("warmaccept", internal=True, mode="warm"),
            inbound=inbound,
            inbound_caller=inbound.caller,
        )
