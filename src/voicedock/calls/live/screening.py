"""Voicemail detection on a live outbound call: the callee screened before the dialogue hears
them (``calls/voicemail.py`` says what an assistant asks for).

While the detector listens (``listening``) the callee's first seconds go to it (``hear``)
instead of the dialogue, and the first message waits for its verdict: ``human`` or ``unknown``
→ the first message and the dialogue as usual; ``machine`` → in ``detect`` mode the call ends
``voicemail`` at once; in ``detect-and-leave-message`` mode the dialogue hears no more of the
machine (``machine``), voicedock waits for the beep (or the greeting's end), speaks the
voicemail message to its end and hangs up, ``voicemail`` too (``end_reason``). The verdict and
its evidence go to ``on_verdict`` as soon as they are known, and into the call's result
(``verdict``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from voicedock.aio import Coro, Supervisor
from voicedock.calls.voicemail import LEAVE_MESSAGE, VOICEMAIL, VoicemailSettings
from voicedock.domain.json import JsonObject
from voicedock.pipeline.answering_machine import (
    MACHINE,
    AmdConfig,
    AmdDecision,
    AnsweringMachineDetector,
    GreetingEnded,
)
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.ending import INTERNAL_ERROR, PROVIDER_ERROR

log = logging.getLogger("voicedock.calls")


class VoicemailScreening:
    def __init__(
        self,
        settings: VoicemailSettings,
        sample_rate: int,
        first_message: str | None,
        *,
        on_verdict: Callable[[JsonObject], Coro[None]] | None,
        tasks: Supervisor,
        end: Callable[[str], None],
    ) -> None:
        """``sample_rate``: of the audio ``hear`` is given; ``first_message`` is said once a
        human (or nobody knows) answered; ``on_verdict`` runs as a task of ``tasks``; ``end``
        ends the call."""
        self._settings = settings
        self._detector = AnsweringMachineDetector(
            AmdConfig(sample_rate=sample_rate),
            wait_for_greeting=settings.mode == LEAVE_MESSAGE,
        )
        self._first_message = first_message
        self._on_verdict, self._tasks, self._end = on_verdict, tasks, end
        self.verdict: JsonObject | None = None  # the result and its evidence
        self._evidence: JsonObject = {}  # the verdict's, completed when the greeting ends
        self.machine = False  # the voicemail message was asked for: ends "voicemail"

    @property
    def listening(self) -> bool:
        """The detector has no verdict yet (or waits for the greeting's end)."""
        return not self._detector.done

    async def hear(self, pcm: bytes, dialogue: Dialogue) -> None:
        """The callee's audio at the dialogue's rate, while the detector listens."""
        for event in self._detector.process(pcm):
            await self._event(event, dialogue)

    def end_reason(self, reason: str) -> str:
        """The call's end reason when the dialogue ended for ``reason``."""
        if self.machine and reason not in (PROVIDER_ERROR, INTERNAL_ERROR):
            return VOICEMAIL  # the voicemail message was spoken: the call ends as such
        return reason

    async def _event(self, event: AmdDecision | GreetingEnded, dialogue: Dialogue) -> None:
        settings = self._settings
        if isinstance(event, AmdDecision):
            self._evidence = event.evidence()
            self.verdict = {"result": event.result, "evidence": self._evidence}
            log.info("call: answering-machine detection: %s (%s)", event.result, event.reason)
            if self._on_verdict is not None:
                self._tasks.spawn(self._on_verdict(dict(self.verdict)))
            if event.result != MACHINE:
                if self._first_message:
                    await dialogue.say(self._first_message)
            elif settings.mode != LEAVE_MESSAGE or not settings.message:
                self.machine = True
                self._end(VOICEMAIL)
            else:
                self.machine = True  # the dialogue hears no more of the machine
            return
        # The greeting is over (beep, silence): the message is recorded from now on.
        assert self.verdict is not None
        self._evidence["message_at_ms"] = event.at_ms
        self._evidence["beep_hz"] = event.beep_hz
        if settings.message:
            await dialogue.end_call(settings.message)
