"""What a warm transfer says to the agent, and how it hears their spoken answer.

``AgentDialogue`` is the ``pbx.base.WarmDialogue`` the service hands to the PBX adapter: the
briefing (``briefing``'s text, or ``DEFAULT_BRIEFING``) followed by the prompt to press 1 or 2,
its voice (``synthesize``: the offline TTS, Piper or espeak-ng, unless replaced, e.g. by a
test or the assistant's own voice) and the voice decision (``decision.listen_for_decision``
over ``transcribe``: the offline STT unless replaced; the ``Service`` replaces it with the
node's recognizer, ``decision.NodeTranscriber``, when the node has a recognition pool). The
briefing is spoken to the agent only: never logged.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass

from voicedock.calls.transfers.decision import Transcriber, listen_for_decision, transcribe_offline
from voicedock.domain.assistant_config import TtsConfig
from voicedock.domain.audio import AudioFormat
from voicedock.pbx.base import Decision, Speech

DEFAULT_BRIEFING = "A caller is being transferred to you by the voice assistant."
BRIEFING_PROMPT = "Press 1 to take the call, or 2 to decline."
# With voice answers on. It names both "yes" and "no", so if the agent's phone echoes it back
# the recognizer hears a mixed answer, which decides nothing.
VOICE_BRIEFING_PROMPT = "Press 1 or say yes to take the call; press 2 or say no to decline."

Synthesizer = Callable[[str], Awaitable[Speech]]


async def synthesize_offline(text: str) -> Speech:
    """``text`` as 16-bit PCM and its sample rate, from the offline TTS (Piper or espeak-ng)."""
    from voicedock.pipeline.providers.registry import create_tts

    tts = create_tts(TtsConfig(provider="offline"))
    try:
        pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
    finally:
        await tts.aclose()
    return pcm, tts.sample_rate


@dataclass(slots=True)
class AgentDialogue:
    """The agent's side of a warm transfer; both voices replaceable."""

    synthesize: Synthesizer = synthesize_offline  # the briefing's voice
    transcribe: Transcriber = transcribe_offline  # the agent's spoken answer as text

    def briefing_text(self, briefing: str | None, *, voice_decision: bool) -> str:
        prompt = VOICE_BRIEFING_PROMPT if voice_decision else BRIEFING_PROMPT
        return f"{briefing or DEFAULT_BRIEFING} {prompt}"

    async def listen(
        self, frames: AsyncIterable[bytes], media_format: AudioFormat
    ) -> Decision | None:
        return await listen_for_decision(frames, media_format, self.transcribe)
