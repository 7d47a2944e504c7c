"""A test double of the ``Pbx`` protocol: records every action, fails on demand, emits events."""

from __future__ import annotations

from voicedock.errors import PbxError
from voicedock.pbx.base import (
    OriginateRequest,
    PbxEvent,
    PbxEventKind,
    PbxEventSink,
    TransferTarget,
)


class FakePbx:
    def __init__(self) -> None:
        self.sink: PbxEventSink | None = None
        self.originated: list[OriginateRequest] = []
        self.hangups: list[tuple[str, str]] = []
        self.transfers: list[tuple[str, TransferTarget]] = []
        self.live: set[str] = set()
        self.fail_next_originate: PbxError | None = None
        self.fail_commands: PbxError | None = None
        self.closed = 0

    async def start(self, sink: PbxEventSink) -> None:
        self.sink = sink

    async def aclose(self) -> None:
        self.closed += 1

    async def originate(self, request: OriginateRequest) -> None:
        if self.fail_next_originate is not None:
            error, self.fail_next_originate = self.fail_next_originate, None
            raise error
        self.originated.append(request)
        self.live.add(request.call_id)

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        if self.fail_commands is not None:
            raise self.fail_commands
        self.hangups.append((call_id, reason))

    async def transfer(self, call_id: str, target: TransferTarget) -> None:
        if self.fail_commands is not None:
            raise self.fail_commands
        self.transfers.append((call_id, target))

    async def live_call_ids(self) -> set[str]:
        return set(self.live)

    # -- test helpers: what a real PBX would report -----------------------------------------

    async def emit(
        self,
        call_id: str,
        kind: PbxEventKind,
        cause: int | None = None,
        tech_cause: int | None = None,
        detail: str = "",
    ) -> None:
        assert self.sink is not None, "start() was not called"
        if kind in (PbxEventKind.HANGUP, PbxEventKind.TRANSFERRED):
            self.live.discard(call_id)
        await self.sink(PbxEvent(call_id, kind, cause, tech_cause, detail=detail))

    async def answer(self, call_id: str) -> None:
        await self.emit(call_id, PbxEventKind.ANSWERED)

    async def hang_up_remote(
        self, call_id: str, cause: int | None = 16, tech_cause: int | None = None
    ) -> None:
        await self.emit(call_id, PbxEventKind.HANGUP, cause, tech_cause)
