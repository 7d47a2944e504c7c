"""What a live call is made from: its settings (``LiveOptions``) and its parts (``LiveParts``).

    live = LiveConversation(media, assistant_config, LiveOptions(context=...), LiveParts(...))
    live.events.listen(store, TranscriptKept)        # what the call signals: its events

The call tells what happens on its events (``pipeline/dialogue/events.py``): whoever needs to
know subscribes there (the call's record, and through it the call's events, webhooks and the
metrics read from the record: ``calls/runner/one_call.py``; the metrics' live counts:
``metrics.py`` ``LiveCounts``), never through a callback handed to the constructor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voicedock.calls.live.phone_menu import MenuKeys, PhoneMenuSettings
from voicedock.calls.live.providers import SpeechProviders
from voicedock.calls.live.secure_keypad import SecureKeypad
from voicedock.calls.live.squad import SquadMembers
from voicedock.calls.voicemail import VoicemailSettings
from voicedock.domain.ai_disclosure import DisclosureRule
from voicedock.media.recording import CallRecorder
from voicedock.pipeline.analysis.schema_checks import StructuredDataCheck
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.events import CallEvents
from voicedock.pipeline.tools import ToolExecutor


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """One live call's settings, besides its assistant's configuration.

    ``context``: the call's context for the model; ``config``: the dialogue's defaults the
    assistant's configuration is laid over (endpointing, echo...); ``voicemail``: the
    screening an outbound call asks for (``screening.py``); ``disclosure``: the AI disclosure
    the call must give (``disclosure.py``); ``phone_menu``: the navigation of the company's
    menu an outbound call reaches (``phone_menu.py``; voicemail is not screened then)."""

    context: str | None = None
    config: ConversationConfig | None = None
    voicemail: VoicemailSettings | None = None
    disclosure: DisclosureRule | None = None
    phone_menu: PhoneMenuSettings | None = None


@dataclass(frozen=True, slots=True)
class LiveParts:
    """What one live call works with.

    ``providers``: its speech providers (none: the registry's, built from the assistant's
    configuration and closed with the call). ``events``: the bus the call tells what happens
    on (none: its own, started and closed with the call; given, its maker's, who starts and
    closes it). ``hang_up``: asks the PBX to hang up (none: through the media session).
    ``recorder``: the call's recording. ``tools`` carries out the model's calls of the
    assistant's tools. ``structured_data_check`` checks what the end-of-call analysis extracts
    against the plan's schema (none: the extracted fields are dropped, not checked).
    ``secure_keypad``: the call's secure keypad entry, which ``tools`` opens
    (``collect_secure_digits``): its keys, and silence where its audio would be. ``squad``:
    the call's squad, whose first member the assistant is (``squad.py``). ``keys``: the
    call's leg, where a phone menu's keys are pressed (``phone_menu.py``)."""

    providers: SpeechProviders | None = None
    events: CallEvents | None = None
    hang_up: Callable[[], Awaitable[None]] | None = None
    recorder: CallRecorder | None = None
    tools: ToolExecutor | None = None
    structured_data_check: StructuredDataCheck | None = None
    secure_keypad: SecureKeypad | None = None
    squad: SquadMembers | None = None
    keys: MenuKeys | None = None
