"""The test calls this node placed and is waiting for: the engine claims a test call's
offer when its inbound side arrives (``calls/engine/inbound.py`` ``PlacedTestCalls``), and
the PBX's events of a simulated caller's leg come here instead of the engine's (the leg is no
call of any organization: ``AwaitedCalls.route``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from voicedock.calls.engine.inbound import PlacedTestCall
from voicedock.pbx.base import PbxEvent, PbxEventKind


@dataclass(slots=True)
class CallerLeg:
    """A simulated caller's leg as the PBX reports it."""

    answered: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    digits: list[str] = field(default_factory=list)  # what it received (unused by the script)


class AwaitedCalls:
    """The test calls placed and awaiting their inbound side, and the simulated callers'
    legs watched."""

    def __init__(self) -> None:
        self._offers: dict[str, PlacedTestCall] = {}
        self._legs: dict[str, CallerLeg] = {}

    def offer(self, token: str, call: PlacedTestCall) -> None:
        self._offers[token] = call

    def withdraw(self, token: str) -> None:
        self._offers.pop(token, None)

    def claim(self, token: str) -> PlacedTestCall | None:
        """``PlacedTestCalls``: the test call placed with ``token``, once."""
        return self._offers.pop(token, None)

    def leg(self, leg_id: str) -> CallerLeg:
        """The leg ``leg_id``, watched from now on (until ``forget``)."""
        return self._legs.setdefault(leg_id, CallerLeg())

    def forget(self, leg_id: str) -> None:
        self._legs.pop(leg_id, None)

    def route(
        self, handle: Callable[[PbxEvent], Awaitable[None]]
    ) -> Callable[[PbxEvent], Awaitable[None]]:
        """The PBX's event sink: a caller leg's events here, every other to ``handle``."""

        async def sink(event: PbxEvent) -> None:
            leg = self._legs.get(event.call_id)
            if leg is None:
                await handle(event)
            elif event.kind is PbxEventKind.ANSWERED:
                leg.answered.set()
            elif event.kind in (PbxEventKind.HANGUP, PbxEventKind.PBX_RESTARTED):
                leg.gone.set()
            elif event.kind is PbxEventKind.DTMF and event.digit is not None:
                leg.digits.append(event.digit)

        return sink


__all__ = ["AwaitedCalls", "CallerLeg"]
