"""The transcript keeper (``pipeline/dialogue/transcript.py``): spoken order held back while an
earlier turn is open, or each message handed on as it comes."""

from __future__ import annotations

import pytest

from pipeline.fakes import told_messages
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.frames import TranscriptEntry, TranscriptRole

pytestmark = pytest.mark.unit


def said(role: TranscriptRole, text: str, started: float) -> TranscriptEntry:
    return TranscriptEntry(role, text, started, started + 1)


def test_a_message_waits_for_an_earlier_turn_still_open() -> None:
    seen: list[str] = []
    open_since: list[float] = [5.0]  # a caller's turn open since t=5
    keeper = TranscriptKeeper(told_messages(seen), lambda: min(open_since, default=None))
    keeper.add(said("assistant", "later", 7.0))
    assert keeper.entries[0].content == "later"
    assert seen == []
    assert keeper.holding
    keeper.add(said("user", "earlier", 5.0))  # the open turn's words, final now
    open_since.clear()
    keeper.report()
    assert seen == ["earlier", "later"]  # spoken order, each once
    assert [e.content for e in keeper.entries] == ["earlier", "later"]


def test_without_open_turns_each_message_is_handed_on_as_it_comes() -> None:
    seen: list[str] = []
    keeper = TranscriptKeeper(told_messages(seen))
    keeper.add(said("assistant", "reply", 7.0))
    keeper.add(said("user", "late words", 5.0))
    assert seen == ["reply", "late words"]
    assert [e.content for e in keeper.entries] == ["reply", "late words"]  # as they came


def test_everything_is_handed_on_once_the_call_is_over() -> None:
    seen: list[str] = []
    keeper = TranscriptKeeper(told_messages(seen), lambda: 1.0)
    keeper.add(said("assistant", "held", 3.0))
    keeper.report(everything=True)
    assert seen == ["held"]
    assert not keeper.holding
