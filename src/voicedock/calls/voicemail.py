"""Voicemail on outbound calls: what an assistant's ``voicemail_detection`` asks of a call.

``off`` (the default): no detection. ``detect``: the callee's first seconds decide ``human``,
``machine`` or ``unknown`` (``pipeline/hearing/answering_machine.py``); a machine's call ends at
once with the end reason ``voicemail``. ``detect-and-leave-message``: on a machine, voicedock waits
for the beep (or the greeting's end), speaks ``voicemail_message`` (the first message when
there is none) and hangs up, ``voicemail`` too. Inbound calls are never screened. The verdict
and its evidence are stored on the call (``answering_machine``) and sent as an
``answering-machine`` webhook event; ``LiveConversation`` carries it out.

Either mode also tells a call-screening assistant (``pipeline/hearing/call_screening.py``) from a
machine: the verdict ``screening``; the screener hears ``screening_message`` (default: who
calls, from ``business_name``, and why, from the call's ``metadata.purpose``), and the person
who then picks up hears the first message. A screener that declines ends the call
``screening-declined``; nobody picking up within ``SCREENING_WAIT_S``, ``screening-timeout``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from voicedock.domain.assistant_config import AssistantConfig
from voicedock.domain.json import JsonValue

VOICEMAIL = "voicemail"  # the end reason of a call a machine answered
DETECT = "detect"
LEAVE_MESSAGE = "detect-and-leave-message"
SCREENING_DECLINED = "screening-declined"  # the end reason when a screener declined the call
SCREENING_TIMEOUT = "screening-timeout"  # nobody picked up after the screener
SCREENING_WAIT_S = 45.0  # of callee audio from the screening message's start to the pick-up
PURPOSE = "purpose"  # the call's metadata key saying why it calls (the default message)
PURPOSE_MAX = 200  # characters of it said


@dataclass(frozen=True, slots=True)
class VoicemailSettings:
    mode: str  # DETECT or LEAVE_MESSAGE
    message: str | None  # left on a machine (LEAVE_MESSAGE)
    screening_message: str = ""  # said to a call-screening assistant
    screening_wait_s: float = SCREENING_WAIT_S


def voicemail_settings(
    assistant_config: AssistantConfig,
    *,
    outbound: bool,
    business_name: str | None = None,
    metadata: Mapping[str, JsonValue] | None = None,
) -> VoicemailSettings | None:
    """The call's voicemail handling, or ``None`` (off, or an inbound call).
    ``business_name`` and ``metadata`` (the call's) make the default screening message."""
    mode = assistant_config.voicemail_detection
    if not outbound or not isinstance(mode, str) or mode not in (DETECT, LEAVE_MESSAGE):
        return None
    first = _text(assistant_config.first_message)
    message = _text(assistant_config.voicemail_message) or first
    purpose = _text((metadata or {}).get(PURPOSE))
    screening = _text(assistant_config.screening_message) or default_screening_message(
        _text(business_name), purpose[:PURPOSE_MAX] if purpose else None
    )
    return VoicemailSettings(mode, message if mode == LEAVE_MESSAGE else None, screening)


def default_screening_message(business_name: str | None, purpose: str | None) -> str:
    """Who is calling and why, as a screener asks: "Hi, this is the virtual assistant of
    Acme, calling about your delivery. ..." (each part left out when unknown)."""
    who = f"the virtual assistant of {business_name}" if business_name else "a virtual assistant"
    why = f", calling about {purpose.rstrip('.')}" if purpose else ""
    return f"Hi, this is {who}{why}. I will wait on the line for them."


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
