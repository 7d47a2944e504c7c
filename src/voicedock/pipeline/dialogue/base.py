"""What both engines share of the ``Dialogue`` surface (``surface.py``) besides their parts:
closing on leaving ``async with``, the end and its reason (``ending.py``), and whether the
assistant is audible (``assistant_audio.py``). Each engine sets ``_end`` and
``_assistant_audio`` and implements ``aclose``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from voicedock.aio import Closable
from voicedock.pipeline.dialogue.assistant_audio import AssistantAudio
from voicedock.pipeline.dialogue.ending import CallEnd


class DialogueBase(Closable):
    _end: CallEnd
    _assistant_audio: AssistantAudio

    async def aclose(self, on_quiet: Callable[[], Awaitable[None]] | None = None) -> None:
        raise NotImplementedError

    async def wait_ended(self) -> str:
        """Wait until the dialogue decided the call is over; returns the reason."""
        return await self._end.wait()

    @property
    def end_reason(self) -> str | None:
        """Why the call ended (None: it has not)."""
        return self._end.reason

    @property
    def assistant_audible(self) -> bool:
        return self._assistant_audio.audible
