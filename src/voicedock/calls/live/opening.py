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

from voicedock.aio import Coro, Supervisor
from voicedock.calls.live.consent import ConsentWindow
from voicedock.calls.live.disclosure import DisclosureOpening
from voicedock.calls.live.screening import VoicemailScreening
from voicedock.calls.live.transcript_delivery import TranscriptDelivery
from voicedock.calls.voicemail import VoicemailSettings
from voicedock.domain.ai_disclosure import DisclosureRule
from voicedock.domain.assistant_config import AssistantConfig, ConsentPlan, set_or
from voicedock.domain.json import JsonObject
from voicedock.media.recording import CallRecorder
from voicedock.pipeline.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue import Dialogue


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
        transcript: TranscriptDelivery | None = None,
        voicemail: VoicemailSettings | None = None,
        on_answering_machine: Callable[[JsonObject], Coro[None]] | None = None,
        on_consent: Callable[[JsonObject], Coro[None]] | None = None,
        disclosure: DisclosureRule | None = None,
    ) -> None:
        """``end`` ends the call; ``tasks`` runs the screening's verdict; ``recorder`` and
        ``transcript`` are held by a consent window that asks for a key; ``on_consent`` runs as
        a task of ``tasks`` with the outcome the window decides."""
        consent_plan = set_or(assistant_config.consent_plan, None)
        told = None if on_consent is None else _spawned(on_consent, tasks)
        self.consent = _consent_window(consent_plan, config, recorder, transcript, end, told)
        said_first = consent_plan.message if self.consent and consent_plan else config.first_message
        if self.consent is not None:
            config = dataclasses.replace(config, first_message=None)
        self.screening = None
        if voicemail is not None:  # the first message waits for the detection's verdict
            self.screening = VoicemailScreening(
                voicemail,
                sample_rate,
                config.first_message,
                on_verdict=on_answering_machine,
                tasks=tasks,
                end=end,
            )
            config = dataclasses.replace(config, first_message=None)
        self.disclosure = None
        if disclosure is not None:  # said before ``said_first`` where it lacks it
            self.disclosure = DisclosureOpening(disclosure, said_first, self.consent)
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


def _consent_window(
    plan: ConsentPlan | None,
    config: ConversationConfig,
    recorder: CallRecorder | None,
    transcript: TranscriptDelivery | None,
    end: Callable[[str], None],
    told: Callable[[JsonObject], None] | None,
) -> ConsentWindow | None:
    """The consent plan's window, unless the call hangs up after its first message: its
    message first; the first message waits for the caller's answer."""
    if plan is None or config.hang_up_after_first_message:
        return None
    first = config.first_message
    return ConsentWindow(plan, first, recorder, end=end, transcript=transcript, on_outcome=told)


def _spawned(
    on_outcome: Callable[[JsonObject], Coro[None]], tasks: Supervisor
) -> Callable[[JsonObject], None]:
    """``on_outcome`` run as a task of ``tasks`` with each outcome it is told."""

    def told(outcome: JsonObject) -> None:
        tasks.spawn(on_outcome(outcome))

    return told
