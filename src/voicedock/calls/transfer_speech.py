"""What the assistant says around a transfer: the announcement, the agent's briefing, the apology.

A transfer command reaches the live conversation first (``LiveConversation.transfer`` →
``prepare_transfer``): the announcement is spoken to its end, so the caller hears it before
the line changes, and a warm transfer gets its briefing for the agent. The PBX transfer
follows (``CommandRunner``); if the PBX reports TRANSFER_FAILED the caller is back with the
assistant, which says ``TRANSFER_FAILED_MESSAGE``.

The briefing is the command's ``summary`` if given, else written by the assistant's LLM from
the conversation (bounded by a timeout), else an offline fallback quoting the caller's last
words. It is spoken to the agent only: never logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from voicedock.errors import ProviderError
from voicedock.media.call_media import CallMedia
from voicedock.media.sink import MediaSink
from voicedock.pbx.base import TransferTarget
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers.base import Llm, Tts

log = logging.getLogger("voicedock.calls")

TRANSFER_FAILED_MESSAGE = (
    "I'm sorry, the transfer did not go through. I'm still here: how else can I help?"
)
BRIEFING_KEY = "briefing"  # in TransferTarget.extra, read by the PBX's warm transfer
FALLBACK_BRIEFING = "A caller from the voice assistant would like to talk to you."
BRIEFING_INSTRUCTION = (
    "You hand this phone call over to a human colleague. In at most two short sentences, "
    "tell the colleague who is calling and what they need. Plain words, no lists."
)
_BRIEFING_TIMEOUT_S = 6.0
_MAX_QUOTE_CHARS = 160


async def prepare_transfer(
    media: CallMedia,
    tts: Tts,
    llm: Llm | None,
    history: Sequence[ChatMessage],
    target: TransferTarget,
    announcement: str | None,
    summary: str | None,
) -> None:
    """Speak ``announcement`` to the end; for a warm transfer, set the agent's briefing."""
    if target.mode == "warm":
        # Written while the announcement plays: both take seconds.
        briefing = asyncio.ensure_future(write_briefing(summary, history, llm))
        try:
            if announcement:
                await speak(media, tts, announcement)
            target.extra[BRIEFING_KEY] = await briefing
        finally:
            briefing.cancel()
    elif announcement:
        await speak(media, tts, announcement)


async def speak(media: CallMedia, tts: Tts, text: str) -> None:
    """Synthesize ``text`` and return once the caller heard all of it."""
    pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
    handle = await MediaSink(media).play(pcm, tts.sample_rate)
    await handle.played()


async def write_briefing(
    summary: str | None, history: Sequence[ChatMessage], llm: Llm | None
) -> str:
    if summary:
        return summary
    if llm is not None and any(m.role == "user" for m in history):
        try:
            async with asyncio.timeout(_BRIEFING_TIMEOUT_S):
                messages = [ChatMessage("system", BRIEFING_INSTRUCTION), *history]
                written = "".join([part async for part in llm.stream(messages)]).strip()
            if written:
                return written
        except (ProviderError, TimeoutError) as exc:
            log.info("briefing not written by the LLM (%s): fallback", type(exc).__name__)
    return fallback_briefing(history)


def fallback_briefing(history: Sequence[ChatMessage]) -> str:
    """Offline: the caller's last words, quoted (cut at a word boundary)."""
    said = [m.content.strip() for m in history if m.role == "user" and m.content.strip()]
    if not said:
        return FALLBACK_BRIEFING
    last = said[-1]
    if len(last) > _MAX_QUOTE_CHARS:
        last = last[:_MAX_QUOTE_CHARS].rsplit(" ", 1)[0] + "…"
    return f"{FALLBACK_BRIEFING} Their last words were: {last}"
