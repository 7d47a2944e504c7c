"""Turn-taking decisions as a pure state machine over per-frame VAD results.

Time is audio time: each call to `Endpointer.process` advances the clock by one frame, so
the same audio always yields the same decisions (no wall clock, no I/O). The conversation
engine feeds it one VAD decision per frame and whether assistant audio is audible.

Rules:
- a caller turn starts after `min_speech_ms` of speech (gaps shorter than
  `speech_gap_ms` do not reset the count), and ends after `end_silence_ms` of silence;
- with `mode = "adaptive"` the silence waited follows a completeness hint about what the
  caller said so far (`hint_complete`, from a transcript of the turn up to the pause): a
  finished sentence ends the turn after `complete_silence_ms`, words trailing off ("and",
  "um") after `incomplete_silence_ms`; without a hint (or speech since it) `end_silence_ms`
  holds, so a pipeline that gives no hints behaves as with `mode = "fixed"`;
- with `turn_detection = "model"` a turn model hears whether the caller finished
  (`pipeline/hearing/turn_detection.py` asks it at each pause, `asked_model` then `hint_model`),
  combined with the transcript's hint when there is one: a turn the model hears finished
  ends after `model_floor_ms` of silence; one it hears unfinished, or while its answer is
  awaited, after `model_wait_ms`; where the two disagree (finished but the words trail off,
  unfinished but they read as a finished sentence), after `incomplete_silence_ms`. A pause
  the model was never asked about (or failed to read) follows the silence rules above;
- while the assistant is audible a turn needs `barge_in_speech_ms` of speech, and starting
  one is a barge-in (`Interruption`); shorter blips (echo, "uh-huh") are ignored;
- no caller speech for `silence_timeout_ms` while the assistant is quiet ends the call
  with reason "silence-timeout"; `max_duration_ms` of call audio ends it with "max-duration";
- with `silence_prompt_ms`, that much silence first asks "are you still there?"
  (`SilencePrompt`), once per silence of the caller: the prompt is assistant audio, so the
  silence timeout counts again from its end;
- while a transfer is under way (`hold_silence`) the caller is with the PBX (ringing a
  target, on hold), not silent on this line: the prompt and the timeout wait until the
  assistant speaks again (the transfer failed: it says so) or the caller starts a turn.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voicedock.domain.assistant_config import TURN_DETECTIONS, TURN_MODEL, TURN_SILENCE
from voicedock.pipeline.frames import (
    EndCall,
    Frame,
    Interruption,
    SilencePrompt,
    UserSpeechStarted,
    UserSpeechStopped,
)

SILENCE_TIMEOUT = "silence-timeout"
MAX_DURATION = "max-duration"
ENDPOINTING_MODES = ("adaptive", "fixed")


@dataclass(slots=True, frozen=True)
class EndpointingConfig:
    frame_ms: int = 20
    min_speech_ms: int = 100
    speech_gap_ms: int = 60
    end_silence_ms: int = 600
    barge_in_speech_ms: int = 240
    silence_timeout_ms: int | None = 30_000
    max_duration_ms: int | None = 600_000
    silence_prompt_ms: int | None = None
    mode: str = "adaptive"
    complete_silence_ms: int = 450
    incomplete_silence_ms: int = 1000
    turn_detection: str = TURN_SILENCE
    model_floor_ms: int = 300
    model_wait_ms: int = 2000

    def __post_init__(self) -> None:
        positive = (
            "frame_ms",
            "min_speech_ms",
            "end_silence_ms",
            "barge_in_speech_ms",
            "complete_silence_ms",
            "incomplete_silence_ms",
            "model_floor_ms",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"endpointing.{name} must be positive")
        if self.mode not in ENDPOINTING_MODES:
            raise ValueError(f"endpointing.mode must be one of {', '.join(ENDPOINTING_MODES)}")
        if self.complete_silence_ms > self.incomplete_silence_ms:
            raise ValueError(
                "endpointing.complete_silence_ms must not exceed incomplete_silence_ms"
            )
        if self.turn_detection not in TURN_DETECTIONS:
            raise ValueError(
                f"endpointing.turn_detection must be one of {', '.join(TURN_DETECTIONS)}"
            )
        if self.model_floor_ms > self.model_wait_ms:
            raise ValueError("endpointing.model_floor_ms must not exceed model_wait_ms")
        for name in ("silence_timeout_ms", "max_duration_ms", "silence_prompt_ms"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"endpointing.{name} must be positive or null")


def silence_decision(
    cfg: EndpointingConfig, now_ms: int, last_activity_ms: int, *, quiet: bool, prompted: bool
) -> EndCall | SilencePrompt | None:
    """The call's limits at ``now_ms`` (call time; the call started at 0): ``max_duration_ms``
    ends it; ``silence_timeout_ms`` since the last speech of either side (``last_activity_ms``)
    while the caller is ``quiet`` ends it; ``silence_prompt_ms`` of that silence asks whether
    the caller is still there, unless already ``prompted`` in this silence. Both dialogues
    apply them through this one rule: the pipeline in audio time, speech-to-speech on the
    clock."""
    if cfg.max_duration_ms is not None and now_ms >= cfg.max_duration_ms:
        return EndCall(MAX_DURATION)
    if not quiet:
        return None
    silent_ms = now_ms - last_activity_ms
    if cfg.silence_timeout_ms is not None and silent_ms >= cfg.silence_timeout_ms:
        return EndCall(SILENCE_TIMEOUT)
    if cfg.silence_prompt_ms is not None and not prompted and silent_ms >= cfg.silence_prompt_ms:
        return SilencePrompt(now_ms)
    return None


class _State(enum.Enum):
    QUIET = enum.auto()
    PENDING = enum.auto()  # speech heard, not yet long enough to be a turn
    SPEAKING = enum.auto()


class _Heard(enum.Enum):
    """What the turn model made of the current pause."""

    NOTHING = enum.auto()  # not asked (or it failed): the silence rules hold
    AWAITED = enum.auto()
    FINISHED = enum.auto()
    UNFINISHED = enum.auto()


_NO_EVENTS: tuple[Frame, ...] = ()


class Endpointer:
    """Feed one VAD decision per frame; returns the decisions taken at that frame."""

    __slots__ = (
        "_cfg",
        "_complete",
        "_ended",
        "_gap_ms",
        "_heard",
        "_held",
        "_held_quiet",
        "_last_activity_ms",
        "_now_ms",
        "_prompted",
        "_silence_ms",
        "_speech_ms",
        "_speech_start_ms",
        "_state",
    )

    def __init__(self, config: EndpointingConfig | None = None) -> None:
        self._cfg = config or EndpointingConfig()
        self._state = _State.QUIET
        self._now_ms = 0
        self._speech_ms = 0
        self._gap_ms = 0
        self._silence_ms = 0
        self._speech_start_ms = 0
        self._last_activity_ms = 0
        self._prompted = False  # asked already in this silence of the caller
        self._ended = False
        self._complete: bool | None = None  # the hint about the turn so far
        self._heard = _Heard.NOTHING  # the turn model's reading of the current pause
        self._held = False  # a transfer under way: the silence limits wait
        self._held_quiet = False  # ... and the assistant has been quiet since

    def hold_silence(self) -> None:
        """A transfer is under way: the silence prompt and timeout wait until the assistant
        next speaks (after having been quiet) or the caller starts a turn."""
        self._held, self._held_quiet = True, False

    @property
    def silence_held(self) -> bool:
        return self._held

    def hint_complete(self, complete: bool | None) -> None:
        """What the caller said up to the current pause reads as finished (True), trailing
        off (False) or cannot tell (None). Forgotten at the next speech: adaptive mode only."""
        if self._state is _State.SPEAKING and self._silence_ms > 0:
            self._complete = complete

    def asked_model(self) -> None:
        """The turn model was asked about the current pause: its answer is awaited (up to
        ``model_wait_ms``). Forgotten at the next speech."""
        if self.pause_started_ms is not None:
            self._heard = _Heard.AWAITED

    def hint_model(self, complete: bool | None) -> None:
        """The turn model heard the caller finish (True) or not (False) in the current
        pause; None: it could not tell (the silence rules hold)."""
        if self.pause_started_ms is not None:
            verdicts = {True: _Heard.FINISHED, False: _Heard.UNFINISHED, None: _Heard.NOTHING}
            self._heard = verdicts[complete]

    def caller_active(self) -> None:
        """The caller did something other than speak (pressed a key): the silence before
        the prompt and the timeout counts from now."""
        self._last_activity_ms = self._now_ms
        self._prompted = False

    @property
    def now_ms(self) -> int:
        """Audio time processed so far."""
        return self._now_ms

    @property
    def user_speaking(self) -> bool:
        return self._state is _State.SPEAKING

    @property
    def user_maybe_speaking(self) -> bool:
        return self._state is not _State.QUIET

    @property
    def silence_ms(self) -> int:
        """Silence since the caller's last speech in the current turn; 0 outside a turn."""
        return self._silence_ms if self._state is _State.SPEAKING else 0

    @property
    def pause_started_ms(self) -> int | None:
        """Audio time at which the caller's current pause in a turn began; None unless the
        caller is in a turn and silent."""
        if self._state is not _State.SPEAKING or self._silence_ms == 0:
            return None
        return self._now_ms - self._silence_ms

    @property
    def speech_started_ms(self) -> int | None:
        """Audio time at which the caller's current (possible) turn began; None when quiet."""
        return None if self._state is _State.QUIET else self._speech_start_ms

    def process(self, is_speech: bool, assistant_audible: bool = False) -> tuple[Frame, ...]:
        if self._ended:
            return _NO_EVENTS
        cfg = self._cfg
        start_ms = self._now_ms
        self._now_ms += cfg.frame_ms
        if assistant_audible:
            self._last_activity_ms = self._now_ms
        if self._held:
            self._hold(assistant_audible)

        events = self._advance(is_speech, assistant_audible, start_ms)

        decided = silence_decision(
            cfg,
            self._now_ms,
            self._last_activity_ms,
            quiet=self._state is _State.QUIET,
            prompted=self._prompted,
        )
        if isinstance(decided, EndCall):
            self._ended = True
        elif decided is not None:
            self._prompted = True
        return events if decided is None else (*events, decided)

    def _hold(self, assistant_audible: bool) -> None:
        """A frame while the silence limits are held: no silence counts; the assistant
        speaking again (after a quiet frame) lets them go."""
        self._last_activity_ms = self._now_ms
        if not assistant_audible:
            self._held_quiet = True
        elif self._held_quiet:
            self._held = False

    def _advance(
        self, is_speech: bool, assistant_audible: bool, frame_start_ms: int
    ) -> tuple[Frame, ...]:
        cfg = self._cfg
        state = self._state
        if state is _State.QUIET:
            if is_speech:
                self._state = _State.PENDING
                self._speech_start_ms = frame_start_ms
                self._speech_ms = cfg.frame_ms
                self._gap_ms = 0
                return self._maybe_start(assistant_audible)
            return _NO_EVENTS
        if state is _State.PENDING:
            if is_speech:
                self._speech_ms += cfg.frame_ms
                self._gap_ms = 0
                return self._maybe_start(assistant_audible)
            self._gap_ms += cfg.frame_ms
            if self._gap_ms > cfg.speech_gap_ms:
                self._state = _State.QUIET
            return _NO_EVENTS
        # SPEAKING
        self._last_activity_ms = self._now_ms
        self._prompted = False
        if is_speech:
            self._silence_ms = 0
            self._complete = None
            self._heard = _Heard.NOTHING
            return _NO_EVENTS
        self._silence_ms += cfg.frame_ms
        if self._silence_ms < self._end_silence_ms():
            return _NO_EVENTS
        self._state = _State.QUIET
        self._complete = None
        self._heard = _Heard.NOTHING
        ended_at = self._now_ms - self._silence_ms
        return (UserSpeechStopped(self._speech_start_ms, ended_at, self._now_ms),)

    def _end_silence_ms(self) -> int:
        cfg = self._cfg
        if cfg.turn_detection == TURN_MODEL and self._heard is not _Heard.NOTHING:
            heard, reads = self._heard, self._complete
            if heard is _Heard.AWAITED:
                return cfg.model_wait_ms
            if heard is _Heard.FINISHED:  # unless the words trail off
                return cfg.incomplete_silence_ms if reads is False else cfg.model_floor_ms
            # Heard unfinished: a sentence that reads as finished waits less.
            return cfg.incomplete_silence_ms if reads is True else cfg.model_wait_ms
        if cfg.mode == "fixed" or self._complete is None:
            return cfg.end_silence_ms
        return cfg.complete_silence_ms if self._complete else cfg.incomplete_silence_ms

    def _maybe_start(self, assistant_audible: bool) -> tuple[Frame, ...]:
        cfg = self._cfg
        needed = cfg.barge_in_speech_ms if assistant_audible else cfg.min_speech_ms
        if self._speech_ms < needed:
            return _NO_EVENTS
        self._state = _State.SPEAKING
        self._silence_ms = 0
        self._complete = None
        self._heard = _Heard.NOTHING
        self._last_activity_ms = self._now_ms
        self._held = False  # the caller speaks on this line: their silence counts again
        started = UserSpeechStarted(self._speech_start_ms)
        if assistant_audible:
            return (started, Interruption(self._now_ms))
        return (started,)
