"""A squad call's connected seconds split between its members, by whose turn each message
was: the first member from the answer, each next one from its first message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from voicedock.domain.records import Call, CallMessage, CallStatus, Direction
from voicedock.domain.squads import CallMember, CallSquad
from voicedock.domain.usage import call_usage

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _said(member: str | None, at: float) -> CallMessage:
    return CallMessage("c", "assistant", "...", started_at=_at(at), member=member)


def _call(squad: CallSquad | None) -> Call:
    return Call(
        id="c", organization_id="o", direction=Direction.OUTBOUND, status=CallStatus.ENDED,
        caller_phone=None, assistant_phone=None, started_at=T0, ended_at=_at(60), squad=squad,
    )  # fmt: skip


def test_the_seconds_are_split_between_the_members_in_turn() -> None:
    squad = CallSquad(
        members=[CallMember(name="desk", assistant_id="a1"), CallMember(name="billing")]
    )
    messages = [_said("desk", 1), _said("billing", 20), _said("desk", 45), _said("desk", 50)]
    usage = call_usage(_call(squad), messages)
    assert usage["members"] == [
        {"member": "desk", "assistant_id": "a1", "seconds": 35.0},  # 0-20 and 45-60
        {"member": "billing", "assistant_id": None, "seconds": 25.0},
    ]
    assert "members" not in call_usage(_call(None), messages)  # one assistant: no split
