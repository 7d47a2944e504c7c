"""The redaction plan in the dialogue: each transcript message redacted once, as it is kept
and handed on (marked, for the recording), and the caller's words given to the model redacted
or clear as the plan says."""

from __future__ import annotations

import pytest

from pipeline.fakes import told_messages
from voicedock.domain.redaction import Redactor
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.history import ModelHistory
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.frames import ChatMessage, HeardAudio, TranscriptEntry

pytestmark = pytest.mark.unit

SAID = "my card is 4111 1111 1111 1111"


def config(model_sees_redacted: bool) -> ConversationConfig:
    return ConversationConfig(
        redactor=Redactor(["card_number"]), model_sees_redacted=model_sees_redacted
    )


def test_each_message_is_redacted_before_it_is_kept_or_handed_on() -> None:
    handed: list[str] = []
    cfg = config(True)
    keeper = TranscriptKeeper(told_messages(handed), redactor=cfg.redactor)
    keeper.add(TranscriptEntry("user", SAID, 1.0, 2.0))
    keeper.add(TranscriptEntry("assistant", "Thank you.", 2.0, 3.0))
    assert handed == ["my card is [card_number]", "Thank you."]
    assert [e.content for e in keeper.entries] == handed
    assert [e.redacted for e in keeper.entries] == [True, False]


@pytest.mark.parametrize(("redacted", "seen"), [(True, "my card is [card_number]"), (False, SAID)])
def test_the_model_sees_the_callers_words_as_the_plan_says(redacted: bool, seen: str) -> None:
    history = ModelHistory(config(redacted))
    history.add(ChatMessage("user", SAID))
    history.add(ChatMessage("assistant", "Noted."))
    assert [m.content for m in history.context()[1:]] == [seen, "Noted."]


def test_only_a_redacted_message_keeps_its_audio() -> None:
    keeper = TranscriptKeeper(None, redactor=config(True).redactor)
    audio = HeardAudio(b"\x00\x01" * 800, 8000, 1.0, 1.1)
    keeper.add(TranscriptEntry("user", SAID, 1.0, 2.0, audio=audio))
    keeper.add(TranscriptEntry("user", "nothing to hide", 3.0, 4.0, audio=audio))
    assert [e.audio for e in keeper.entries] == [audio, None]


def test_a_card_number_said_over_two_messages_is_held_and_redacted_in_both() -> None:
    """The first half waits for the caller's next message (and what follows it, in spoken
    order); an echo of it said meanwhile loses the digits too."""
    handed: list[str] = []
    audio = HeardAudio(b"\x00\x01" * 800, 8000, 1.0, 1.1)
    keeper = TranscriptKeeper(told_messages(handed), redactor=config(True).redactor)
    keeper.add(
        TranscriptEntry("user", "my card is four one one one, one one one one.", 1, 2, audio=audio)
    )
    keeper.add(TranscriptEntry("assistant", "I heard 4111 1111, go on.", 2, 3))
    assert handed == []  # a card number may go on from the first
    keeper.add(TranscriptEntry("user", "1111 1111", 3, 4, audio=audio))
    assert handed == [
        "my card is [card_number].",
        "I heard [card_number], go on.",
        "[card_number]",
    ]
    assert [e.redacted for e in keeper.entries] == [True, True, True]
    assert keeper.entries[0].audio is audio  # silenced in the recording


def test_digits_that_make_no_card_number_are_handed_on_as_said() -> None:
    handed: list[str] = []
    audio = HeardAudio(b"\x00\x01" * 800, 8000, 1.0, 1.1)
    keeper = TranscriptKeeper(told_messages(handed), redactor=config(True).redactor)
    keeper.add(TranscriptEntry("user", "my order is 4111 1111", 1, 2, audio=audio))
    keeper.add(TranscriptEntry("user", "1234 5678, thanks", 3, 4))
    assert handed == ["my order is 4111 1111", "1234 5678, thanks"]
    assert keeper.entries[0].audio is None
    # held no longer than the window: three messages of others come between
    keeper.add(TranscriptEntry("user", "and 5555", 5, 6))
    for at in (7, 8, 9):
        keeper.add(TranscriptEntry("assistant", "Noted.", at, at))
    assert handed[-4:] == ["and 5555", "Noted.", "Noted.", "Noted."]


def test_the_call_s_end_hands_on_what_is_held() -> None:
    handed: list[str] = []
    keeper = TranscriptKeeper(told_messages(handed), redactor=config(True).redactor)
    keeper.add(TranscriptEntry("user", "it is 4111", 1, 2))
    assert handed == []
    keeper.report(everything=True)
    assert handed == ["it is 4111"]
