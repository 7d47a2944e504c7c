"""How a live call opens, before its conversation: what is said first and what holds the
assistant's first message back until then.

``CallOpening`` takes the call's configuration and hands back the parts that open it: the
consent plan's window (``consent.py``: its message, the caller's answer, then the first
message), the voicemail screening of an outbound call that asks for it (``screening.py``: the
first message waits for the detection's verdict; with a consent plan the window says it), and
the AI disclosure the call must give (``disclosure.py``: where the opening lacks it, said
before all of it). ``config`` is the call's configuration without the first message any of
them says; ``start`` begins what is said first once the dialogue runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine

from voicedock.aio import Supervisor
from voicedock.calls.live.consent import ConsentWindow
from voicedock.calls.live.disclosure import DisclosureOpening
from voicedock.calls.live.screening import VoicemailScreening
from voicedock.calls.live.transcript_delivery import TranscriptDelivery
from voicedock.calls.voicemail import VoicemailSettings
from voicedock.domain.ai_disclosure import DisclosureRule
from voicedock.domain.assistant_config import AssistantConfig, set_or
from voicedock.media.recording import CallRecorder
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.events import CallEvents


class CallOpening:
    """The parts that open one call, made from its configuration."""

    def __init__(
        self,
        config: ConversationConfig,
        assistant_config: AssistantConfig,
        sample_rate: int,
        *,
        end: Callable[[str], None],
        tasks: Supervisor,
        recorder: CallRecorder | None = None,
        events: CallEvents,
        transcript: TranscriptDelivery | None = None,
        voicemail: VoicemailSettings | None = None,
        disclosure: DisclosureRule | None = None,
    ) -> None:
        """``end`` ends the call; ``tasks`` runs the screening's background work; ``events``
        is told the screening's verdict and the consent window's outcome; ``recorder`` and
        ``transcript`` are held by a consent window that asks for a key."""
        first = config.first_message  # what the assistant says first
        self.consent = None
        consent_plan = set_or(assistant_config.consent_plan, None)
        if consent_plan is not None and not config.hang_up_after_first_message:
            # Its message first; the first message waits for the caller's answer.
            self.consent = ConsentWindow(
                consent_plan, first, recorder, end=end, transcript=transcript, events=events
            )
            config = dataclasses.replace(config, first_message=None)
        self.screening = None
        if voicemail is not None:  # the first message waits for the detection's verdict
            self.screening = VoicemailScreening(
                voicemail, sample_rate, config.first_message, events=events, tasks=tasks, end=end
            )
            config = dataclasses.replace(config, first_message=None)
        self.disclosure = None
        if disclosure is not None:
            opening = consent_plan.message if self.consent and consent_plan else first
            self.disclosure = DisclosureOpening(disclosure, opening, self.consent)
            config = self.disclosure.held_from(config)
        self.config = config

    def start(
        self, dialogue: Dialogue, spawn: Callable[[Coroutine[object, object, None]], object]
    ) -> None:
        """The dialogue started: what is said first begins (the first message is the
        dialogue's own when nothing holds it)."""
        if self.disclosure is not None and self.disclosure.says_first:
            spawn(self.disclosure.run(dialogue))
        elif self.consent is not None:
            spawn(self.consent.run(dialogue))
