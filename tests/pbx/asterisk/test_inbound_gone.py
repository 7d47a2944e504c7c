"""An inbound caller who hangs up between voicedock's offer and its answer: the subscription to
the channel's events is refused (ARI ``422 Event source does not exist``, or ``404`` from the
answer). Either way the call ends at once as a caller who left, and nothing fails."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import pytest

from voicedock.pbx.asterisk.ari.events import AriChannel
from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.asterisk.inbound import AsteriskInbound
from voicedock.pbx.legs import CallRegistry

pytestmark = pytest.mark.unit


class GoneCallerAri:
    def __init__(self, refusal: AriHttpError, *, at: str) -> None:
        self.refusal = refusal
        self.at = at
        self.answered: list[str] = []

    async def subscribe_channel(self, channel_id: str) -> None:
        if self.at == "subscribe":
            raise self.refusal

    async def answer(self, channel_id: str) -> None:
        if self.at == "answer":
            raise self.refusal
        self.answered.append(channel_id)


class Settled:
    async def wait_settled(self, timeout: float) -> str:
        return "boot-1"


class Hangups:
    def __init__(self) -> None:
        self.channels: list[str] = []

    async def ended(self, channel_id: str, cause: int | None, tech_cause: int | None) -> None:
        self.channels.append(channel_id)


class Reports:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def answered(self, call_id: str) -> None:
        self.calls.append(call_id)


NO_SOURCE = AriHttpError("POST", "/applications/a/subscription", 422, "Event source does not exist")
NO_CHANNEL = AriHttpError("POST", "/channels/chan-1/answer", 404, "Channel not found")


@pytest.mark.parametrize(("refusal", "at"), [(NO_SOURCE, "subscribe"), (NO_CHANNEL, "answer")])
async def test_a_caller_gone_before_the_answer_ends_the_call_without_a_failure(
    refusal: AriHttpError, at: str
) -> None:
    ari = GoneCallerAri(refusal, at=at)
    hangups, reports = Hangups(), Reports()
    spawned: list[Coroutine[Any, Any, None]] = []

    async def offer(call: Any) -> str:
        return "call-inbound-1"

    inbound = AsteriskInbound(
        ari,  # type: ignore[arg-type]
        CallRegistry(),
        reports,  # type: ignore[arg-type]
        Settled(),  # type: ignore[arg-type]
        hangups,  # type: ignore[arg-type]
        offer,
        spawned.append,  # type: ignore[arg-type]
        register_timeout=1.0,
    )
    inbound.arrived(AriChannel(id="chan-1", caller_number="+31612345678"), "+31201234567")
    [accepting] = spawned
    await accepting  # raises nothing
    assert hangups.channels == ["chan-1"]  # the call ends as a caller who left
    assert reports.calls == []  # never reported answered
