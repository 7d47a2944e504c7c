"""Voicemail detection on a live outbound call: the callee screened before the dialogue hears
them (``calls/voicemail.py`` says what an assistant asks for).

While the detector listens (``listening``) the callee's first seconds go to it (``hear``)
instead of the dialogue, and the first message waits for its verdict: ``human`` or ``unknown``
→ the first message and the dialogue as usual; ``machine`` → in ``detect`` mode the call ends
``voicemail`` at once; in ``detect-and-leave-message`` mode the dialogue hears no more of the
machine (``machine``), voicedock waits for the beep (or the greeting's end), speaks the
voicemail message to its end and hangs up, ``voicemail`` too (``end_reason``). The verdict and
its evidence are told on the call's events (``AnsweringMachineHeard``) as soon as they are
known, and go into the call's result (``verdict``).

A call-screening assistant also sounds like a machine (a long greeting), so with the call's
STT (``transcribe_with``) a ``machine`` verdict without a beep waits for the greeting's end:
its words (``pipeline/hearing/call_screening.py``) tell a screener's prompt from a voicemail
greeting. A screener (verdict ``screening``) hears ``screening_message``; the dialogue still
hears nothing while ``ScreenerWait`` (``call_screening.py``) waits for the person, who then
hears the first message; a screener that declines, or nobody picking up in time, ends the call
``screening-declined`` / ``screening-timeout``. The evidence gains ``screening_outcome``
(``waiting``, ``answered``, ``declined``, ``timeout``) and ``answered_at_ms``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from voicedock.aio import Supervisor
from voicedock.calls.live.call_screening import ANSWERED, TIMEOUT, Outcome, ScreenerWait
from voicedock.calls.voicemail import (
    LEAVE_MESSAGE,
    SCREENING_DECLINED,
    SCREENING_TIMEOUT,
    VOICEMAIL,
    VoicemailSettings,
)
from voicedock.domain.json import JsonObject
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.ending import INTERNAL_ERROR, PROVIDER_ERROR
from voicedock.pipeline.dialogue.events import AnsweringMachineHeard, CallEvents
from voicedock.pipeline.hearing.answering_machine import (
    MACHINE,
    AmdConfig,
    AmdDecision,
    AnsweringMachineDetector,
    GreetingEnded,
)
from voicedock.pipeline.hearing.call_screening import is_screening_prompt
from voicedock.pipeline.providers.base import ProviderError, Stt

log = logging.getLogger("voicedock.calls")

SCREENING: Final = "screening"  # the verdict of a call a screening assistant answered
GREETING_MAX_S = 30  # of the callee's first audio kept to be read


class VoicemailScreening:
    def __init__(
        self,
        settings: VoicemailSettings,
        sample_rate: int,
        first_message: str | None,
        *,
        events: CallEvents | None,
        tasks: Supervisor,
        end: Callable[[str], None],
    ) -> None:
        """``sample_rate``: of the audio ``hear`` is given; ``first_message`` is said once a
        human (or nobody knows) answered; ``events`` is told the verdict; ``tasks`` runs what
        the screening does in the background; ``end`` ends the call."""
        self._settings = settings
        self._rate = sample_rate
        self._detector = AnsweringMachineDetector(
            AmdConfig(sample_rate=sample_rate), wait_for_greeting=True
        )
        self._first_message = first_message
        self._events, self._tasks, self._end = events, tasks, end
        self.verdict: JsonObject | None = None  # the result and its evidence
        self._evidence: JsonObject = {}  # the verdict's, completed when the greeting ends
        self.machine = False  # the voicemail message was asked for: ends "voicemail"
        self._stt: Stt | None = None
        self._greeting: list[bytes] = []  # the callee's first audio, read for a screener
        self._greeting_room = GREETING_MAX_S * sample_rate * 2  # bytes of it still kept
        self._deferred: AmdDecision | None = None  # a machine, unless its words say screener
        self._reading = False  # the greeting is being transcribed
        self._screener: ScreenerWait | None = None
        self._heard_ms = 0.0  # of callee audio so far (the evidence's clock)
        self._waited_from_ms = 0.0  # when the wait for the person behind a screener began

    def transcribe_with(self, stt: Stt | None) -> None:
        """The call's STT, which reads a long greeting for a screener (none: never read)."""
        self._stt = stt

    @property
    def listening(self) -> bool:
        """The callee is not the dialogue's yet: the detector has no verdict (or waits for
        the greeting's end), the greeting is read, or a screener still speaks."""
        if self._screener is not None:
            return self._screener.outcome is None
        return self._reading or not self._detector.done

    async def hear(self, pcm: bytes, dialogue: Dialogue) -> None:
        """The callee's audio at the dialogue's rate, while ``listening``."""
        self._heard_ms += len(pcm) * 1000 / (2 * self._rate)
        if self._screener is not None:
            self._screener.hear(pcm)
            return
        if self._reading:
            return  # the greeting is over: what follows it is not read
        if self._greeting_room > 0:
            self._greeting.append(pcm)
            self._greeting_room -= len(pcm)
        for event in self._detector.process(pcm):
            await self._event(event, dialogue)

    def end_reason(self, reason: str) -> str:
        """The call's end reason when the dialogue ended for ``reason``."""
        if self.machine and reason not in (PROVIDER_ERROR, INTERNAL_ERROR):
            return VOICEMAIL  # the voicemail message was spoken: the call ends as such
        return reason

    async def _event(self, event: AmdDecision | GreetingEnded, dialogue: Dialogue) -> None:
        if isinstance(event, AmdDecision):
            if event.result == MACHINE and event.reason != "beep" and self._stt is not None:
                self._deferred = event  # a screener's prompt? its end tells
                return
            await self._verdict(event, dialogue)
            return
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            if not event.beep:  # a machine's greeting ends in a beep, a screener's in silence
                self._reading = True
                self._tasks.spawn(self._read_greeting(deferred, event, dialogue))
                return
            await self._verdict(deferred, dialogue)
        if self.machine and self._settings.mode == LEAVE_MESSAGE:
            await self._greeting_over(event, dialogue)

    async def _verdict(self, decision: AmdDecision, dialogue: Dialogue) -> None:
        self._publish(decision.result, decision)
        if decision.result != MACHINE:
            if self._first_message:
                await dialogue.say(self._first_message)
        elif self._settings.mode != LEAVE_MESSAGE or not self._settings.message:
            self.machine = True
            self._end(VOICEMAIL)
        else:
            self.machine = True  # the dialogue hears no more of the machine

    def _publish(self, result: str, decision: AmdDecision) -> None:
        self._evidence = decision.evidence()
        self.verdict = {"result": result, "evidence": self._evidence}
        log.info("call: answering-machine detection: %s (%s)", result, decision.reason)
        if self._events is not None:
            self._events.emit(AnsweringMachineHeard(dict(self.verdict)))

    async def _greeting_over(self, event: GreetingEnded, dialogue: Dialogue) -> None:
        """The greeting is over (beep, silence): the message is recorded from now on."""
        assert self.verdict is not None
        self._evidence["message_at_ms"] = event.at_ms
        self._evidence["beep_hz"] = event.beep_hz
        if self._settings.message:
            await dialogue.end_call(self._settings.message)

    async def _read_greeting(
        self, decision: AmdDecision, ended: GreetingEnded, dialogue: Dialogue
    ) -> None:
        """A long greeting ended in silence: a screener's prompt, or a machine's greeting."""
        assert self._stt is not None
        pcm, self._greeting = b"".join(self._greeting), []
        try:
            text = await self._stt.transcribe(pcm, self._rate)
        except ProviderError as exc:  # unread: the acoustic verdict stands
            log.warning("call screening: greeting not transcribed (%s)", type(exc).__name__)
            text = ""
        if not is_screening_prompt(text):
            self._reading = False
            await self._verdict(decision, dialogue)
            if self.machine and self._settings.mode == LEAVE_MESSAGE:
                await self._greeting_over(ended, dialogue)
            return
        self._publish(SCREENING, decision)
        self._evidence["screening_outcome"] = "waiting"
        self._screener = ScreenerWait(
            self._stt,
            self._rate,
            self._settings.screening_wait_s,
            tasks=self._tasks,
            on_outcome=lambda outcome, at_ms: self._screened(outcome, at_ms, dialogue),
        )
        self._waited_from_ms = self._heard_ms
        self._reading = False
        await dialogue.say(self._settings.screening_message)

    async def _screened(self, outcome: Outcome, at_ms: int, dialogue: Dialogue) -> None:
        self._evidence["screening_outcome"] = outcome
        log.info("call: call screening: %s", outcome)
        if outcome == ANSWERED:
            self._evidence["answered_at_ms"] = round(self._waited_from_ms) + at_ms
            if self._first_message:
                await dialogue.say(self._first_message)
        else:
            self._end(SCREENING_TIMEOUT if outcome == TIMEOUT else SCREENING_DECLINED)
