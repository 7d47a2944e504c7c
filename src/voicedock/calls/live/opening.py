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
from dataclasses import dataclass

from voicedock.aio import Supervisor
from voicedock.calls.live.consent import ConsentWindow
from voicedock.calls.live.disclosure import DisclosureOpening
from voicedock.calls.live.options import LiveOptions
from voicedock.calls.live.phone_menu import MenuNavigation, PhoneMenuSettings
from voicedock.calls.live.screening import VoicemailScreening
from voicedock.calls.live.transcript_delivery import TranscriptDelivery
from voicedock.domain.assistant_config import AssistantConfig, set_or
from voicedock.media.recording import CallRecorder
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.events import CallEvents


@dataclass(frozen=True, slots=True)
class _Wiring:
    """What the opening's parts are made with, given to them and not kept by the opening."""

    rate: int
    events: CallEvents
    tasks: Supervisor
    end: Callable[[str], None]


class CallOpening:
    """The parts that open one call, made from its configuration."""

    def __init__(
        self,
        config: ConversationConfig,
        assistant_config: AssistantConfig,
        sample_rate: int,
        options: LiveOptions,
        *,
        end: Callable[[str], None],
        tasks: Supervisor,
        recorder: CallRecorder | None = None,
        events: CallEvents,
        transcript: TranscriptDelivery | None = None,
    ) -> None:
        """``options``: the call's voicemail screening, AI disclosure and phone menu; ``end``
        ends the call; ``tasks`` runs the screening's background work; ``events`` is told the
        screening's verdict, the consent window's outcome and a menu's steps; ``recorder`` and
        ``transcript`` are held by a consent window that asks for a key."""
        wiring = _Wiring(sample_rate, events, tasks, end)
        first = config.first_message  # what the assistant says first
        self.consent = None
        consent_plan = set_or(assistant_config.consent_plan, None)
        if consent_plan is not None and not config.hang_up_after_first_message:
            # Its message first; the first message waits for the caller's answer.
            self.consent = ConsentWindow(
                consent_plan, first, recorder, end=end, transcript=transcript, events=events
            )
            config = dataclasses.replace(config, first_message=None)
        config = self._screened(config, options, wiring)
        self.disclosure = None
        if options.disclosure is not None:
            opening = consent_plan.message if self.consent and consent_plan else first
            self.disclosure = DisclosureOpening(options.disclosure, opening, self.consent)
            config = self.disclosure.held_from(config)
        self.config = self._held_for_menu(config, options.phone_menu, wiring)

    def _screened(
        self, config: ConversationConfig, options: LiveOptions, wiring: _Wiring
    ) -> ConversationConfig:
        """The voicemail screening an outbound call asks for (none behind a phone menu): the
        first message waits for its verdict."""
        self.screening = None
        if options.voicemail is None or options.phone_menu is not None:
            return config
        self.screening = VoicemailScreening(
            options.voicemail,
            wiring.rate,
            config.first_message,
            events=wiring.events,
            tasks=wiring.tasks,
            end=wiring.end,
        )
        return dataclasses.replace(config, first_message=None)

    def _held_for_menu(
        self, config: ConversationConfig, phone_menu: PhoneMenuSettings | None, wiring: _Wiring
    ) -> ConversationConfig:
        """A phone menu's navigation: the whole opening waits for the person behind it."""
        self.menu = None
        self._first = config.first_message  # said by the dialogue, or after the menu
        if phone_menu is None:
            return config
        w = wiring
        self.menu = MenuNavigation(phone_menu, w.rate, events=w.events, tasks=w.tasks, end=w.end)
        return dataclasses.replace(config, first_message=None)

    def start(
        self, dialogue: Dialogue, spawn: Callable[[Coroutine[object, object, None]], object]
    ) -> None:
        """The dialogue started: what is said first begins (the first message is the
        dialogue's own when nothing holds it); after a phone menu, once a person picked up."""
        if self.menu is not None:
            spawn(self._after_menu(self.menu, dialogue))
        elif self.disclosure is not None and self.disclosure.says_first:
            spawn(self.disclosure.run(dialogue))
        elif self.consent is not None:
            spawn(self.consent.run(dialogue))

    async def _after_menu(self, menu: MenuNavigation, dialogue: Dialogue) -> None:
        """The person who picked up after the menu hears what the call opens with (nothing
        to say: the model answers them)."""
        await menu.picked_up.wait()
        disclosing = self.disclosure is not None and self.disclosure.says_first
        says = disclosing or self.consent is not None or bool(self._first)
        await dialogue.inject_context(menu.note, trigger_response=not says)
        if disclosing and self.disclosure is not None:
            await self.disclosure.run(dialogue)
        elif self.consent is not None:
            await self.consent.run(dialogue)
        elif self._first:
            await dialogue.say(self._first)
