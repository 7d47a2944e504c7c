"""Consent and disclosure on a live call (the assistant's ``consent_plan``, docs/privacy.md).

The plan's message is said to its end before the first message; the first message waits for
the caller's answer. ``announce``: the message only, the call is recorded as usual. With a key
(``opt_out_keypad``, ``opt_in_keypad``) the caller may answer while the message plays and for
``timeout_seconds`` after it, and the recording is held in memory meanwhile
(``CallRecorder.hold``: nothing on disk): ``opt_out_keypad``, the key refuses and the timeout
passing without it accepts; ``opt_in_keypad``, only the key accepts (no key: ``no_answer``,
not recorded). A call that ends before the answer is decided by what is known: a key pressed
counts, else ``no_answer`` (not recorded). Accepted, the held recording is written, from the
call's start; otherwise it is discarded, and on a refusal with ``on_refusal`` ``end_call``
the call ends ``consent-refused`` without its first message. With ``on_refusal``
``no_recording_no_transcript`` the call's transcript is held too (``TranscriptDelivery.hold``:
no message stored or sent) and, on a refusal or no opt-in, withheld for the whole call: the
call goes on, and nothing of what is said is kept (``transcribed`` is False; its result has no
transcript, hence no analysis of one). The caller's keys until the answer are the window's
(``takes``): none reaches the dialogue, hence the model; nor does what the caller says until then
(``open``: the caller's audio is silence to the dialogue, the recording keeps it).

The outcome, ``{"mode", "outcome", "at"}``, is told on the call's events (``ConsentDecided``)
the moment the window decides it (stored on the call then: a call that ends later never shows
its end without it), and into the call's result (``outcome``), stored on the call and in its
end-of-call report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from voicedock.calls.live.transcript_delivery import TranscriptDelivery
from voicedock.domain.assistant_config import (
    CONSENT_DEFAULT_KEY,
    CONSENT_DEFAULT_REFUSAL,
    CONSENT_DEFAULT_TIMEOUT_S,
    ConsentMode,
    ConsentPlan,
    given,
)
from voicedock.domain.json import JsonObject
from voicedock.domain.timestamps import iso
from voicedock.media.recording import CallRecorder
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.events import CallEvents, ConsentDecided
from voicedock.pipeline.dialogue.squad_dialogue import SquadDialogue
from voicedock.pipeline.dialogue.turn_engine import TurnEngine

log = logging.getLogger("voicedock.calls")

ANNOUNCE = "announce"
OPT_OUT = "opt_out_keypad"
OPT_IN = "opt_in_keypad"
END_CALL = "end_call"
NO_TRANSCRIPT = "no_recording_no_transcript"
# The outcomes stored on the call.
ANNOUNCED = "announced"
ACCEPTED = "accepted"
REFUSED = "refused"
NO_ANSWER = "no_answer"
CONSENT_REFUSED = "consent-refused"  # the call's end reason with on_refusal end_call
_AUDIBLE_POLL_S = 0.05
_AUDIBLE_START_S = 10.0  # a speech-to-speech dialogue's message starts playing within this


@dataclass(frozen=True, slots=True)
class ConsentOutcome:
    """What the caller's answer (or its absence) decides."""

    outcome: str
    recorded: bool
    ends_call: bool
    transcribed: bool = True


def decide(mode: ConsentMode, pressed: bool, on_refusal: str) -> ConsentOutcome:
    """The outcome of the plan's ``mode`` when the caller pressed its key (``pressed``) or
    not before the window closed."""
    if mode == ANNOUNCE:
        return ConsentOutcome(ANNOUNCED, recorded=True, ends_call=False)
    if mode == OPT_OUT:
        if not pressed:
            return ConsentOutcome(ACCEPTED, recorded=True, ends_call=False)
        return _not_given(REFUSED, on_refusal, ends_call=on_refusal == END_CALL)
    if pressed:  # opt in
        return ConsentOutcome(ACCEPTED, recorded=True, ends_call=False)
    return _not_given(NO_ANSWER, on_refusal)


def _not_given(outcome: str, on_refusal: str, *, ends_call: bool = False) -> ConsentOutcome:
    """Refused, or not given: never recorded, and not transcribed if the plan says so."""
    return ConsentOutcome(
        outcome, recorded=False, ends_call=ends_call, transcribed=on_refusal != NO_TRANSCRIPT
    )


class ConsentWindow:
    """One call's disclosure and the caller's answer, run once the dialogue started."""

    def __init__(
        self,
        plan: ConsentPlan,
        first_message: str | None,
        recorder: CallRecorder | None,
        *,
        end: Callable[[str], None],
        transcript: TranscriptDelivery | None = None,
        events: CallEvents | None = None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``first_message`` is said once the answer is known (unless the call ends);
        ``recorder`` is held until then when the plan asks for a key, and ``transcript``
        (the call's messages as they are said) too when a refusal keeps no transcript;
        ``end`` ends the call; ``events`` is told the outcome the window decides
        (``ConsentDecided``; not one ``close`` decides: the call's result carries that one)."""
        self._plan = plan
        self._key: str = given(plan.key, CONSENT_DEFAULT_KEY)
        self._timeout_s = float(given(plan.timeout_seconds, CONSENT_DEFAULT_TIMEOUT_S))
        self._on_refusal: str = given(plan.on_refusal, CONSENT_DEFAULT_REFUSAL)
        self._first_message = first_message
        self._recorder = recorder
        self._end, self._wall = end, wall
        self._events = events
        self._pressed = asyncio.Event()
        self._asks = plan.mode != ANNOUNCE
        if self._asks and recorder is not None:
            recorder.hold()
        self._transcript = None
        if self._asks and self._on_refusal == NO_TRANSCRIPT and transcript is not None:
            self._transcript = transcript
            transcript.hold()
        self.outcome: JsonObject | None = None  # {"mode", "outcome", "at"} once decided
        self.transcribed = True  # False: the caller's refusal keeps no transcript
        self._open = True

    @property
    def open(self) -> bool:
        """The window runs: the message is said and the answer awaited. What the caller says
        meanwhile is recorded (held) but never heard by the dialogue, hence the model: the
        conversation starts with the first message, once the answer is known."""
        return self._open

    def takes(self, digit: str) -> bool:
        """A key the caller pressed: True when it is the window's (until the answer is
        known), never the dialogue's."""
        if not self._asks or self.outcome is not None:
            return False
        if digit == self._key:
            self._pressed.set()
        return True

    def close(self) -> None:
        """The call ends: an answer still awaited is decided by what is known (a key pressed
        while the message played counts; none: ``no_answer``, not recorded). An announcement
        not said to its end decides nothing."""
        self._open = False
        if self.outcome is None and self._asks:
            if self._pressed.is_set():
                self._decided(decide(self._plan.mode, True, self._on_refusal))
            else:  # the opt-out window did not pass either
                self._decided(_not_given(NO_ANSWER, self._on_refusal))

    async def run(self, dialogue: Dialogue) -> None:
        """Say the message to its end, await the answer, act on it, then the first message."""
        await said_to_its_end(dialogue, self._plan.message)
        if self._asks and not self._pressed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pressed.wait(), self._timeout_s)
        if self.outcome is not None:  # the call ended meanwhile (``close``)
            return
        decided = decide(self._plan.mode, self._pressed.is_set(), self._on_refusal)
        outcome = self._decided(decided)
        self._open = False
        if self._events is not None:  # before the call can end (``decided.ends_call``)
            self._events.emit(ConsentDecided(dict(outcome)))
        if decided.ends_call:
            self._end(CONSENT_REFUSED)
            return
        if self._first_message:
            await dialogue.say(self._first_message)

    def _decided(self, decided: ConsentOutcome) -> JsonObject:
        outcome: JsonObject = {
            "mode": self._plan.mode,
            "outcome": decided.outcome,
            "at": iso(self._wall()),
        }
        self.outcome = outcome
        log.info("call: consent %s (%s)", decided.outcome, self._plan.mode)
        if self._recorder is not None and self._asks:
            if decided.recorded:
                self._recorder.release()
            else:
                self._recorder.discard()
        self.transcribed = decided.transcribed
        if self._transcript is not None:
            if decided.transcribed:
                self._transcript.release()
            else:
                self._transcript.withhold()
        return outcome


async def said_to_its_end(dialogue: Dialogue, text: str) -> None:
    """``text`` said to its end: a turn engine's announcement (a barge-in does not cut it; a
    squad's: its speaking member's); on a speech-to-speech call said like a ``say``
    (voicedock's own TTS), until the assistant is heard no more (the dialogue tells no moment
    for it: it is looked at every 50 ms)."""
    if isinstance(dialogue, SquadDialogue) and (member := dialogue.member_dialogue) is not None:
        dialogue = member
    if isinstance(dialogue, TurnEngine):
        await dialogue.announce(text)
        return
    await dialogue.say(text)
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not dialogue.assistant_audible and loop.time() - start < _AUDIBLE_START_S:  # noqa: ASYNC110
        await asyncio.sleep(_AUDIBLE_POLL_S)
    while dialogue.assistant_audible:  # noqa: ASYNC110
        await asyncio.sleep(_AUDIBLE_POLL_S)
