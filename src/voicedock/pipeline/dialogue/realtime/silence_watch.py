"""The call's limits and the silence prompt on a speech-to-speech call.

The provider decides what is speech: its server VAD says when the caller holds the floor
(``caller_started``, ``caller_stopped``). The watch applies the pipeline's rule
(``pipeline/hearing/endpointing.py`` ``silence_decision``: maximum duration, silence timeout,
silence prompt) on the clock, counting the silence from the last time the caller or the assistant
was heard (``activity``; a key pressed too). The silence prompt is asked for once per silence, and
only while nothing is said, thought or carried out (``busy``), as the pipeline asks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.ending import CallEnd
from voicedock.pipeline.frames import EndCall, SilencePrompt
from voicedock.pipeline.hearing.endpointing import silence_decision

_WATCH_INTERVAL_S = 0.1


class SilenceWatch:
    def __init__(
        self,
        config: ConversationConfig,
        end: CallEnd,
        *,
        audible: Callable[[], bool],
        busy: Callable[[], bool],
        on_end: Callable[[EndCall], object],
        on_prompt: Callable[[], object],
    ) -> None:
        """``audible``: the assistant is heard now; ``busy``: something is being said, the
        model's answer is awaited or a tool runs. ``on_end`` ends the call (a limit);
        ``on_prompt`` says the silence prompt."""
        self._config, self._end = config, end
        self._audible, self._busy = audible, busy
        self._on_end, self._on_prompt = on_end, on_prompt
        self._last_activity = 0.0  # loop time of the caller's or the assistant's last speech
        self.caller_speaking = False  # the server VAD holds a turn of the caller open
        self._prompted = False  # asked whether the caller is still there, in this silence

    def activity(self) -> None:
        """The caller was heard (their words transcribed)."""
        self._last_activity = asyncio.get_running_loop().time()

    def caller_started(self) -> None:
        self.activity()
        self.caller_speaking, self._prompted = True, False

    def caller_stopped(self) -> None:
        self.activity()
        self.caller_speaking = False

    def key_pressed(self) -> None:
        """The caller is not silent."""
        self.activity()
        self._prompted = False

    async def run(self) -> None:
        """Until the call ends, or the watch ends it."""
        loop = asyncio.get_running_loop()
        started = self._last_activity = loop.time()

        def ms(at: float) -> int:
            return round((at - started) * 1000)

        while not self._end.ending:
            await asyncio.sleep(_WATCH_INTERVAL_S)
            now = loop.time()
            if self._audible() or self.caller_speaking:
                self._last_activity = now
            decided = silence_decision(
                self._config.endpointing,
                ms(now),
                ms(self._last_activity),
                quiet=not self.caller_speaking,
                prompted=self._prompted,
            )
            if isinstance(decided, EndCall):
                self._on_end(decided)
                return
            if isinstance(decided, SilencePrompt):
                self._prompted = True
                if not self._busy():  # as the pipeline asks: nothing said, thought or carried out
                    self._on_prompt()
