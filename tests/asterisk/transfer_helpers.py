"""Shared by the transfer tests: a call with its media leg connected, bridge and file checks."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np

from pbx.lab_calls import ANSWERS, Recorder, request
from voicedock.pbx.asterisk.media.legs import MediaLeg
from voicedock.pbx.asterisk.media.session import MediaSession
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.pbx.base import OriginateRequest, PbxEventKind


async def channel_ids(pbx: AsteriskPbx) -> set[str]:
    return {c.id for c in await pbx.ari.list_channels()}


async def bridge_members(pbx: AsteriskPbx, bridge_id: str) -> set[str] | None:
    """The channels in the bridge, ``None`` when the bridge is gone."""
    bridges = await pbx.ari.request("GET", "/bridges")
    for bridge in bridges if isinstance(bridges, list) else []:
        if bridge.get("id") == bridge_id:
            return {str(c) for c in bridge.get("channels", [])}
    return None


async def until_bridged(pbx: AsteriskPbx, bridge_id: str, *channels: str) -> None:
    async with asyncio.timeout(10):
        while not set(channels) <= (await bridge_members(pbx, bridge_id) or set()):
            await asyncio.sleep(0.05)


@asynccontextmanager
async def answered_call_with_media(
    pbx: AsteriskPbx, events: Recorder, destination: str = ANSWERS
) -> AsyncIterator[tuple[OriginateRequest, MediaLeg, MediaSession]]:
    call = request(destination)
    await pbx.originate(call)
    await events.wait(call.call_id, PbxEventKind.ANSWERED)
    leg = await pbx.open_media(call.call_id)
    async with MediaSession.connect(leg.url) as media:
        await until_bridged(pbx, leg.bridge_id, call.call_id, leg.channel_id)
        yield call, leg, media


async def new_file(directory: Path, pattern: str, before: set[Path], within: float = 10) -> Path:
    async with asyncio.timeout(within):
        while not (fresh := set(directory.glob(pattern)) - before):
            await asyncio.sleep(0.05)
    return fresh.pop()


def voiced_seconds(path: Path, threshold: int = 500, *, after: float = 0.0) -> float:
    """How much of a 16-bit WAV (from ``after`` seconds on) has 20 ms frames louder (RMS)
    than ``threshold``."""
    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    samples = samples[int(after * rate) :]
    size = rate // 50
    frames = samples[: len(samples) // size * size].reshape(-1, size).astype(np.float64)
    rms = np.sqrt((frames**2).mean(axis=1)) if len(frames) else np.zeros(0)
    return float((rms > threshold).sum()) / 50
