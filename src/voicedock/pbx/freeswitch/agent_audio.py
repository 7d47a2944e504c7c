"""A warm-transfer agent leg's audio on FreeSWITCH: the briefing played to it, its voice heard.

The briefing's words and voice are the adapter's ``WarmDialogue``'s (``calls/transfers``: the
call's briefing followed by "Press 1 to take the call ...", offline Piper or espeak-ng by
default, as on Asterisk); the speech is synthesized while the agent's phone rings and
played on the agent leg the way the assistant's speech reaches a caller (docs/freeswitch.md,
"Playback path"): a mod_audio_stream stream is started on the agent leg, the speech goes over
the websocket as ``streamAudio``, the module writes it to a file and voicedock queues
``playback`` of that file on the agent leg. No filesystem is shared with FreeSWITCH.

No voice (synthesis failed or timed out) or no stream (mod_audio_stream refused, the stream
never connected): a beep, ``uuid_broadcast <agent> tone_stream://... aleg``, so the agent still
knows to press 1 and the transfer never waits on its briefing.

The same stream carries the agent's voice back (``agent_stream``): with voice answers on, the
dialogue listens to it for a spoken "yes" or "no" while DTMF still decides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from voicedock.errors import MediaError, PbxError
from voicedock.media.call_media import CallMedia
from voicedock.pbx.base import Speech
from voicedock.pbx.freeswitch.commands import build_uuid_broadcast_tone
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.media.hub import FreeswitchMediaHub

log = logging.getLogger("voicedock.pbx.freeswitch.pbx")

SYNTHESIS_TIMEOUT = 15.0  # seconds; the agent's phone usually rings for part of it
BRIEFING_FORMAT = "slin16"  # the stream's rate; TTS output is resampled to it once
MAX_BRIEFING_SECONDS = 60.0  # a briefing that plays longer is cut and the window opens
BEEP_ON_MS, BEEP_OFF_MS, BEEP_HZ, BEEP_REPEATS = 400, 200, 880, 2


async def synthesize_quietly(
    synthesize: Callable[[str], Awaitable[Speech]], text: str
) -> Speech | None:
    """The briefing's speech, or ``None`` when there is no voice for it (logged, never the
    text: briefings name the caller's request)."""
    try:
        async with asyncio.timeout(SYNTHESIS_TIMEOUT):
            pcm, rate = await synthesize(text)
    except Exception as exc:  # noqa: BLE001 - any broken voice is a beep, never a stuck transfer
        log.warning("warm transfer briefing not synthesized: %s", type(exc).__name__)
        return None
    if not pcm or rate <= 0:
        return None
    return pcm, rate


@asynccontextmanager
async def agent_stream(
    hub: FreeswitchMediaHub, agent_channel: str, call_id: str
) -> AsyncIterator[CallMedia | None]:
    """The agent leg's mod_audio_stream stream (the briefing out, the agent's voice in), or
    ``None`` when it cannot be had (module missing, never connected): beep and DTMF then."""
    async with AsyncExitStack() as stack:
        media: CallMedia | None
        try:
            media = await stack.enter_async_context(
                hub.open(agent_channel, call_id, BRIEFING_FORMAT)
            )
        except (MediaError, PbxError) as exc:
            log.warning("warm transfer: no audio stream on the agent leg: %s", exc)
            media = None
        yield media


async def speak_briefing(
    media: CallMedia | None, esl: EslClient, *, agent_channel: str, speech: Speech | None
) -> str:
    """Play the briefing on the agent leg until it has been heard; ``"voice"`` or ``"beep"``.

    Cancelling it (the agent decided early, or hung up) drops what is queued of it.
    """
    if speech is not None and media is not None:
        pcm, rate = speech
        try:
            await _play(media, pcm, rate)
        except (MediaError, PbxError) as exc:
            log.warning("warm transfer briefing not played: %s", exc)
        else:
            return "voice"
    await _beep(esl, agent_channel)
    return "beep"


async def _play(media: CallMedia, pcm: bytes, rate: int) -> None:
    from voicedock.media.sink import MediaSink  # the media stack, only when used

    handle = await MediaSink(media).play(pcm, rate)
    try:
        async with asyncio.timeout(MAX_BRIEFING_SECONDS):
            await handle.played()
    except TimeoutError:
        log.warning("warm transfer briefing cut after %.0f s", MAX_BRIEFING_SECONDS)


async def _beep(esl: EslClient, agent: str) -> None:
    command = build_uuid_broadcast_tone(
        agent, on_ms=BEEP_ON_MS, off_ms=BEEP_OFF_MS, hz=BEEP_HZ, repeats=BEEP_REPEATS
    )
    try:
        await esl.api(command)
    except PbxError as exc:  # the agent still decides; the window opens regardless
        log.warning("warm transfer beep not played: %s", exc)
        return
    await asyncio.sleep(BEEP_REPEATS * (BEEP_ON_MS + BEEP_OFF_MS) / 1000)
