"""What a call opens with (``pipeline/dialogue/first_message.py``)."""

from __future__ import annotations

import pytest

from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.ending import (
    REFUSED,
)
from voicedock.pipeline.dialogue.first_message import opening
from voicedock.pipeline.frames import EndCall, Say

pytestmark = pytest.mark.unit


def test_the_first_message_is_a_say_or_a_refusal() -> None:
    assert opening(ConversationConfig()) is None
    assert opening(ConversationConfig(first_message="Hello.")) == Say("Hello.")
    refused = ConversationConfig(first_message="Closed.", hang_up_after_first_message=True)
    assert opening(refused) == EndCall(REFUSED, "Closed.")
