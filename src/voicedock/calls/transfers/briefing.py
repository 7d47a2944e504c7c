"""What the assistant says around a transfer: the announcement, the agent's briefing, the apology.

A transfer command reaches the live conversation first (``LiveConversation.transfer`` →
``prepare_transfer``): the announcement is spoken to its end, so the caller hears it before
the line changes, and a warm transfer gets its briefing's text for the agent (its voice and
the agent's answer are ``transfers.agent``'s). The PBX transfer follows (``CommandRunner``);
if the PBX reports TRANSFER_FAILED the caller is back with the assistant, which says
``control.TRANSFER_FAILED_MESSAGE``.

The briefing is the command's ``summary`` if given, else written by the assistant's LLM from
the conversation and the call's context (bounded by a timeout), else an offline template: the
call's context ("Transferring a caller: ...") and the caller's last words. The rule-based demo
policy is no writer (it would greet the agent), so offline calls get the template. The briefing
is spoken to the agent only: never logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from voicedock.errors import ProviderError
from voicedock.media.call_media import CallMedia
from voicedock.media.sink import MediaSink
from voicedock.pbx.base import BRIEFING_KEY, TransferTarget
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers.base import Llm, Tts
from voicedock.pipeline.providers.rule_based import RuleBasedPolicy

log = logging.getLogger("voicedock.calls")

FALLBACK_BRIEFING = "A caller from the voice assistant would like to talk to you."
CONTEXT_BRIEFING = "Transferring a caller: {context}"
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
    *,
    context: str | None = None,
) -> None:
    """Speak ``announcement`` to the end; for a warm transfer, set the agent's briefing."""
    if target.mode != "warm":
        if announcement:
            await speak(media, tts, announcement)
        return
    # Written while the announcement plays: both take seconds.
    async with asyncio.TaskGroup() as tasks:
        writing = tasks.create_task(write_briefing(summary, history, llm, context=context))
        if announcement:
            await speak(media, tts, announcement)
    target.extra[BRIEFING_KEY] = writing.result()


async def speak(media: CallMedia, tts: Tts, text: str) -> None:
    """Synthesize ``text`` and return once the caller heard all of it."""
    pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
    handle = await MediaSink(media).play(pcm, tts.sample_rate)
    await handle.played()


async def write_briefing(
    summary: str | None,
    history: Sequence[ChatMessage],
    llm: Llm | None,
    *,
    context: str | None = None,
) -> str:
    if summary:
        return summary
    writer = None if isinstance(llm, RuleBasedPolicy) else llm
    if writer is not None and any(m.role == "user" for m in history):
        instruction = BRIEFING_INSTRUCTION
        if context and context.strip():
            instruction = f"{instruction}\n\nContext for this call:\n{context.strip()}"
        try:
            async with asyncio.timeout(_BRIEFING_TIMEOUT_S):
                messages = [ChatMessage("system", instruction), *history]
                written = "".join([part async for part in writer.stream(messages)]).strip()
            if written:
                return written
        except (ProviderError, TimeoutError) as exc:
            log.info("briefing not written by the LLM (%s): fallback", type(exc).__name__)
    return fallback_briefing(history, context=context)


def fallback_briefing(history: Sequence[ChatMessage], *, context: str | None = None) -> str:
    """Offline: the call's context and the caller's last words, quoted (cut at a word)."""
    about = _cut(context.strip()) if context and context.strip() else ""
    if about and not about.endswith((".", "!", "?", "…")):
        about += "."
    opening = CONTEXT_BRIEFING.format(context=about) if about else ""
    said = [m.content.strip() for m in history if m.role == "user" and m.content.strip()]
    if not said:
        return opening or FALLBACK_BRIEFING
    return f"{opening or FALLBACK_BRIEFING} Their last words were: {_cut(said[-1])}"


def _cut(text: str) -> str:
    if len(text) > _MAX_QUOTE_CHARS:
        return text[:_MAX_QUOTE_CHARS].rsplit(" ", 1)[0] + "…"
    return text
