"""Voicemail on outbound calls: what an assistant's ``voicemail_detection`` asks of a call.

``off`` (the default): no detection. ``detect``: the callee's first seconds decide ``human``,
``machine`` or ``unknown`` (``pipeline/answering_machine.py``); a machine's call ends at once
with the end reason ``voicemail``. ``detect-and-leave-message``: on a machine, voicedock waits
for the beep (or the greeting's end), speaks ``voicemail_message`` (the first message when
there is none) and hangs up, ``voicemail`` too. Inbound calls are never screened. The verdict
and its evidence are stored on the call (``answering_machine``) and sent as an
``answering-machine`` webhook event; ``LiveConversation`` carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass

from voicedock.domain.assistant_config import AssistantConfig

VOICEMAIL = "voicemail"  # the end reason of a call a machine answered
DETECT = "detect"
LEAVE_MESSAGE = "detect-and-leave-message"


@dataclass(frozen=True, slots=True)
class VoicemailSettings:
    mode: str  # DETECT or LEAVE_MESSAGE
    message: str | None  # left on a machine (LEAVE_MESSAGE)


def voicemail_settings(
    assistant_config: AssistantConfig, *, outbound: bool
) -> VoicemailSettings | None:
    """The call's voicemail handling, or ``None`` (off, or an inbound call)."""
    mode = assistant_config.voicemail_detection
    if not outbound or not isinstance(mode, str) or mode not in (DETECT, LEAVE_MESSAGE):
        return None
    first = _text(assistant_config.first_message)
    message = _text(assistant_config.voicemail_message) or first
    return VoicemailSettings(mode, message if mode == LEAVE_MESSAGE else None)


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
