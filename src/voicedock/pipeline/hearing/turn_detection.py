"""Semantic end of turn on a call: the turn model (``turn_model.py``) asked at each pause of
the caller whether they finished, its answer given to the endpointer (``endpointing.py``).

Once the caller has been silent ``pause_ms`` in a turn, the audio of the turn so far (the
call's rate; the model resamples it to its own) goes to the model; the endpointer waits for
its answer (up to ``model_wait_ms``), then ends the turn after a short floor if the model
heard the caller finish, or waits longer if not. An answer that comes after the caller spoke
again is dropped: each pause gets its own. A model that fails leaves the pause to the silence
rules (logged once per call).

The prediction is blocking CPU work, never done on the event loop: ``predict`` runs it in the
node's recognition pool (``recognition.py``: a caller waits for it, so it is ``DUE``, and its
waits count in admission control) or, without the pool, in a thread of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeAlias

from voicedock.aio import Supervisor
from voicedock.pipeline.hearing.listener import Listener
from voicedock.pipeline.hearing.turn_model import TurnPrediction, predict_blocking

log = logging.getLogger("voicedock.pipeline")

# The turn model's reading of a caller's audio (16-bit mono PCM, its sample rate).
PredictTurn: TypeAlias = Callable[[bytes, int], Awaitable[TurnPrediction]]

PAUSE_MS = 60  # silence in a turn after which the model is asked


async def predict_in_thread(pcm: bytes, sample_rate: int) -> TurnPrediction:
    """``predict_blocking`` in a thread of its own (a node without a recognition pool)."""
    return await asyncio.to_thread(predict_blocking, pcm, sample_rate)


class TurnDetector:
    """One call's turn model at the caller's pauses. ``listen()`` after each frame the
    listener processed; the predictions run as children of ``tasks``."""

    def __init__(
        self,
        predict: PredictTurn,
        listener: Listener,
        tasks: Supervisor,
        pause_ms: int = PAUSE_MS,
    ) -> None:
        self._predict, self._listener, self._tasks = predict, listener, tasks
        self._pause_ms = pause_ms
        self._asked: tuple[int, int] | None = None  # (turn, pause) last asked about
        self._failed = False  # a failure was logged already

    def listen(self) -> None:
        """Ask the model about the caller's current pause, once it is ``pause_ms`` long."""
        endpointer = self._listener.endpointer
        turn, pause = endpointer.speech_started_ms, endpointer.pause_started_ms
        if turn is None or pause is None or endpointer.silence_ms < self._pause_ms:
            return
        if self._asked == (turn, pause):
            return
        audio = self._listener.heard_so_far()
        if not audio:
            return
        self._asked = (turn, pause)
        if self._tasks.spawn(self._ask(turn, pause, audio), name="turn model") is not None:
            endpointer.asked_model()

    async def _ask(self, turn: int, pause: int, audio: bytes) -> None:
        complete: bool | None = None
        try:
            complete = (await self._predict(audio, self._listener.sample_rate)).complete
        except Exception as exc:  # noqa: BLE001 - the silence rules take over for this pause
            if not self._failed:
                log.warning("turn model failed, silence decides: %s", type(exc).__name__)
            self._failed = True
        endpointer = self._listener.endpointer
        if endpointer.speech_started_ms == turn and endpointer.pause_started_ms == pause:
            endpointer.hint_model(complete)
