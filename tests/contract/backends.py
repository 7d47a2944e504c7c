"""The PBX backends the call contract runs against, behind one small test-side interface.

* ``freeswitch-fake``: ``FreeswitchPbx`` over the in-process fake FreeSWITCH (ESL and
  mod_audio_stream byte for byte); always available, about a second for the whole suite.
* ``asterisk-lab``: ``AsteriskPbx`` over the real lab Asterisk (``tests/asterisk/conftest.py``
  ``lab`` fixture): skipped when the lab cannot run here, a failure under ``CI=true``.

A backend names its parties by role (answers, busy, echo, ...) so that one test body holds
both PBXs to the same outcome.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

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
    new_call_id: Any = field(default=lambda: str(uuid.uuid4()))

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
    from freeswitch.fake_freeswitch import FakeFreeswitch
    from freeswitch.test_pbx_outbound import PASSWORD, make_pbx

    numbers = {role: f"+1555000{i:04d}" for i, role in enumerate(ROLES)}
    async with FakeFreeswitch(password=PASSWORD) as fake:
        outcomes = {"busy": "busy", "congestion": "congestion", "rejected": "rejected"}
        outcomes |= {"invalid": "unallocated", "no-answer": "no_answer"}
        for role, outcome in outcomes.items():
            fake.destinations[numbers[role]] = outcome
        fake.echo_destinations.add(numbers["echo"])
        fake.hang_up_after[numbers["hangs-up"]] = 0.3
        events = Recorder()
        async with make_pbx(fake) as pbx:
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
            new_call_id=lab_calls.new_call_id,
        )
