"""What a call's dialogue opens with: the assistant's ``first_message``, said like a ``say``
(queued behind nothing, never dropped; on a pipeline call it waits while the caller holds the
floor, even if its first audio was already on its way: ``barge_in.py``), or, for a call the
organization's server refused (``hang_up_after_first_message``), the call's final message: it
is said, then the call ends with the reason ``refused``. Both engines open a call with it.
"""

from __future__ import annotations

from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.ending import REFUSED
from voicedock.pipeline.frames import EndCall, Say


def opening(config: ConversationConfig) -> Say | EndCall | None:
    """The call's first message as a frame (None: the assistant waits for the caller)."""
    if not config.first_message:
        return None
    if config.hang_up_after_first_message:
        return EndCall(REFUSED, config.first_message)
    return Say(config.first_message)
