"""An inbound caller who hangs up between voicedock's offer and its answer: the subscription to
the channel's events is refused (ARI ``422 Event source does not exist``, or ``404`` from the
answer). Either way the call ends at once as a caller who left (``caller-left``: not answered,
never a PBX error), its HANGUP saying which step failed and what Asterisk answered. Any other
refusal hangs the caller up and ends the call the same way, as a PBX error."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import pytest

from voicedock.pbx.asterisk.ari.events import AriChannel
from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.asterisk.inbound import ANSWER_REFUSED, AsteriskInbound
from voicedock.pbx.causes import CALLER_LEFT
from voicedock.pbx.legs import CallRegistry

pytestmark = pytest.mark.unit


class GoneCallerAri:
    def __init__(self, refusal: AriHttpError, *, at: str) -> None:
        self.refusal = refusal
        self.at = at
        self.answered: list[str] = []
        self.hung_up: list[str] = []

    async def subscribe_channel(self, channel_id: str) -> None:
        if self.at == "subscribe":
            raise self.refusal

    async def answer(self, channel_id: str) -> None:
        if self.at == "answer":
            raise self.refusal
        self.answered.append(channel_id)

    async def hangup_channel(self, channel_id: str, reason: str = "normal") -> bool:
        self.hung_up.append(channel_id)
        return True

    async def request(self, method: str, path: str, **options: Any) -> object:
        """A header read (the caller's attestation): a caller that sent none."""
        raise AriHttpError(method, path, 500, "Unable to read provided function")


class Settled:
    async def wait_settled(self, timeout: float) -> str:
        return "boot-1"


@dataclass(frozen=True)
class Ended:
    channel_id: str
    cause: int | None
    tech_cause: int | None
    detail: str
    reason: str


class Hangups:
    def __init__(self) -> None:
        self.ended_calls: list[Ended] = []

    async def ended(
        self,
        channel_id: str,
        cause: int | None,
        tech_cause: int | None,
        *,
        detail: str = "",
        reason: str = "",
    ) -> None:
        self.ended_calls.append(Ended(channel_id, cause, tech_cause, detail, reason))


class Reports:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def answered(self, call_id: str) -> None:
        self.calls.append(call_id)


NO_SOURCE = AriHttpError("POST", "/applications/a/subscription", 422, "Event source does not exist")
NO_CHANNEL = AriHttpError("POST", "/channels/chan-1/answer", 404, "Channel not found")
REFUSED = AriHttpError("POST", "/channels/chan-1/answer", 500, "Internal Server Error")


def accepting(ari: GoneCallerAri, hangups: Hangups, reports: Reports) -> Coroutine[Any, Any, None]:
    """The acceptance of a caller on channel ``chan-1`` (to be awaited)."""
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
    inbound.heard("chan-1")  # its StasisStart read, ahead of the event queue
    inbound.arrived(AriChannel(id="chan-1", caller_number="+31612345678"), "+31201234567")
    [accept] = spawned
    return accept


@pytest.mark.parametrize(("refusal", "at"), [(NO_SOURCE, "subscribe"), (NO_CHANNEL, "answer")])
async def test_a_caller_gone_before_the_answer_ends_the_call_without_a_failure(
    refusal: AriHttpError, at: str
) -> None:
    ari = GoneCallerAri(refusal, at=at)
    hangups, reports = Hangups(), Reports()
    await accepting(ari, hangups, reports)  # raises nothing
    [ended] = hangups.ended_calls
    assert ended.channel_id == "chan-1"
    assert ended.detail == CALLER_LEFT  # the call ends as a caller who left: not answered
    assert ended.reason.startswith(f"{at} of channel chan-1 failed ")
    assert "after the caller arrived" in ended.reason
    assert "of it in the event queue" in ended.reason
    assert f"{refusal.status} {refusal.message}" in ended.reason
    assert ari.hung_up == []  # gone already
    assert reports.calls == []  # never reported answered


async def test_a_caller_asterisk_refuses_to_answer_is_hung_up_as_a_pbx_error() -> None:
    ari = GoneCallerAri(REFUSED, at="answer")
    hangups, reports = Hangups(), Reports()
    await accepting(ari, hangups, reports)  # raises nothing: the call ends now
    assert ari.hung_up == ["chan-1"]
    [ended] = hangups.ended_calls
    assert (ended.channel_id, ended.cause, ended.detail) == ("chan-1", None, ANSWER_REFUSED)
    assert ended.reason.startswith("answer of channel chan-1 failed ")
    assert "500 Internal Server Error" in ended.reason
    assert reports.calls == []
