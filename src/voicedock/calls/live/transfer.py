"""A transfer asked of a live call, before the PBX carries it out (``CommandRunner``).

The announcement is spoken to its end, so the caller hears it before the line changes, and a
warm transfer gets its briefing for the agent (``calls/transfers/briefing.py``), written
meanwhile. A turn-engine conversation speaks the announcement itself, so it is in the
transcript (and the call's messages) like anything else the caller heard; on a
speech-to-speech call it is said into the media by the briefing's own voice. From then on the
caller is with the PBX (ringing the target, on hold), not silent on the line: a turn-engine
conversation holds its silence prompt and timeout until it speaks again (the transfer failed)
or the caller does (``turn_engine.hold_silence``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from voicedock.calls.live.providers import SpeechProviders
from voicedock.calls.transfers.briefing import prepare_transfer
from voicedock.media.call_media import CallMedia
from voicedock.pbx.base import TransferTarget
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.turn_engine import TurnEngine, hold_silence
from voicedock.pipeline.frames import ChatMessage


async def prepare_live_transfer(
    dialogue: Dialogue,
    media: CallMedia,
    providers: SpeechProviders,
    history: Sequence[ChatMessage],
    target: TransferTarget,
    announcement: str | None,
    summary: str | None,
    *,
    context: str | None,
) -> None:
    """Speak ``announcement`` to its end; for a warm transfer, the agent's briefing in
    ``target.extra``."""
    spoken = None
    if announcement and isinstance(dialogue, TurnEngine):
        spoken, announcement = dialogue.announce(announcement), None
    briefing = prepare_transfer(
        media,
        providers.tts,
        providers.llm,
        history,
        target,
        announcement,  # None: the conversation speaks it, while the briefing is written
        summary,
        context=context,
    )
    if spoken is None:
        await briefing
    else:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(spoken)
            await briefing
    if isinstance(dialogue, TurnEngine):
        hold_silence(dialogue)
