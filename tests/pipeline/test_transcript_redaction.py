"""The redaction plan in the dialogue: each transcript message redacted once, as it is kept
and handed on (marked, for the recording), and the caller's words given to the model redacted
or clear as the plan says."""

from __future__ import annotations

import pytest

from voicedock.domain.redaction import Redactor
from voicedock.pipeline.conversation_config import ConversationConfig
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
    keeper = TranscriptKeeper(lambda e: handed.append(e.content), redact=cfg.redact)
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
    keeper = TranscriptKeeper(None, redact=config(True).redact)
    audio = HeardAudio(b"\x00\x01" * 800, 8000, 1.0)
    keeper.add(TranscriptEntry("user", SAID, 1.0, 2.0, audio=audio))
    keeper.add(TranscriptEntry("user", "nothing to hide", 3.0, 4.0, audio=audio))
    assert [e.audio for e in keeper.entries] == [audio, None]
