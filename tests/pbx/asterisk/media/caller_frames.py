"""The caller's first frames as a media session's inbound iteration hands them over."""

from __future__ import annotations

import asyncio

from voicedock.pbx.asterisk.media.clocked_session import ClockedSession


async def first_frames(session: ClockedSession, n: int, timeout: float = 1.0) -> list[bytes]:
    """The next ``n`` frames of ``session.inbound_audio()`` (``TimeoutError`` if they do not
    come in ``timeout`` seconds)."""
    got: list[bytes] = []
    async with asyncio.timeout(timeout):
        async for frame in session.inbound_audio():
            got.append(frame)
            if len(got) == n:
                break
    return got
