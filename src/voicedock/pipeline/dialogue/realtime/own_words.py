"""voicedock's own words on a speech-to-speech call: what must be reliable is spoken by its TTS.

The first message, a ``say``, the silence prompt and the tool filler are never asked of the
model. A say (the silence prompt too) takes the floor from the model: its reply in flight is
cancelled and cut as heard, and the model is told what was said (a system item); the filler
plays beside the tool it covers. Each is a task a barge-in stops, spoken through
``AssistantMessages.speak`` (after what is said now, recorded as heard).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine

from voicedock.pipeline.dialogue.realtime.messages import AssistantMessages
from voicedock.pipeline.providers.realtime import RealtimeConversation

Spawn = Callable[[Coroutine[object, object, None]], "asyncio.Task[None] | None"]


class OwnWords:
    def __init__(
        self, messages: AssistantMessages, silence_prompt: str, *, spawn_speech: Spawn
    ) -> None:
        """``spawn_speech`` runs a task of the dialogue that a barge-in stops."""
        self._messages, self._spawn_speech = messages, spawn_speech
        self._silence_prompt = silence_prompt
        self._conv: RealtimeConversation | None = None

    def connected(self, conv: RealtimeConversation) -> None:
        """The session whose model is told what was said."""
        self._conv = conv

    def say(self, text: str) -> None:
        self._spawn_speech(self._say(text))

    def prompt_silence(self) -> None:
        self._spawn_speech(self._say(self._silence_prompt))

    def filler(self, text: str) -> None:
        """The tool filler, while the model's function call runs."""
        self._spawn_speech(self._messages.speak(text))

    async def _say(self, text: str) -> None:
        """Speak ``text`` through our TTS, after cutting the model's reply in flight."""
        if self._conv is not None:
            await self._conv.cancel_response()
            await self._conv.inject_context(f"The assistant says to the caller: {text}")
        await self._messages.cut_reply()
        await self._messages.speak(text)
