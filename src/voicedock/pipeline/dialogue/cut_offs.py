"""Early cut-offs on a live call, heard on its events: the caller was judged finished
(``SpeechEnded``) and started speaking again (``SpeechStarted``) within ``RESUME_WITHIN_MS``,
as ``voicedock eval turns`` counts them on recorded calls (``pipeline/hearing/cut_off.py``).

``CutOffWatch`` subscribes to one call's bus and tells each cut-off on it (``CallerCutOff``):
the metrics count it, and the dialogue's record of the turn the caller went on in counts it
(``CutOffsSince``, ``TurnLatency.early_cut_offs``), as the turn whose reply the resumption
stopped may leave no record. A judgement is cut off once at most: speech after the first
resumption waits for the next one. Both times are the dialogue's wall clock when it decided:
the end of turn (when the reply may start, as on a recorded call) and the caller's speech (its
VAD's decision, a little after the first word).
"""

from __future__ import annotations

from voicedock.pipeline.dialogue.events import CallerCutOff, CallEvents, SpeechEnded, SpeechStarted
from voicedock.pipeline.hearing.cut_off import resumed_early
from voicedock.weak import weak_method


class CutOffWatch:
    """Tells ``events`` of each early cut-off (``CallerCutOff``); attach one per call's bus.
    The bus holds it weakly (it holds the bus): whoever makes it keeps it, as the call does."""

    def __init__(self, events: CallEvents) -> None:
        self._events = events
        self._judged_at: float | None = None  # the last end of turn not yet resumed after
        self.cut_offs = 0
        events.subscribe(SpeechEnded, weak_method(self._ended))
        events.subscribe(SpeechStarted, weak_method(self._started))

    def _ended(self, ended: SpeechEnded) -> None:
        self._judged_at = ended.at

    def _started(self, started: SpeechStarted) -> None:
        judged, self._judged_at = self._judged_at, None
        if judged is None:
            return
        decided_ms, resumed_ms = judged * 1000, started.at * 1000
        if resumed_early(decided_ms, resumed_ms):
            self.cut_offs += 1
            self._events.emit(CallerCutOff(round(resumed_ms - decided_ms, 1)))


class CutOffsSince:
    """The early cut-offs told on a call's bus since a dialogue last took them: the record of
    the turn it answers next counts them (``TurnLatency.early_cut_offs``)."""

    def __init__(self, events: CallEvents) -> None:
        self._count = 0
        events.subscribe(CallerCutOff, self._told)

    def take(self) -> int:
        """The cut-offs told since the last ``take``."""
        count, self._count = self._count, 0
        return count

    def _told(self, _cut: CallerCutOff) -> None:
        self._count += 1
