"""A call's listening side fed frame by frame, as the conversation feeds it: the listener,
then whatever listens after each frame (a streaming recognizer, a turn detector)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from voicedock.aio import Supervisor
from voicedock.pipeline.hearing.listener import Listener, UserUtterance

from .synth import frames


async def supervised() -> Supervisor:
    tasks = Supervisor("test", logging.getLogger("test"))
    await tasks.start()
    return tasks


async def feed(
    listener: Listener, pcm: bytes, listen: Callable[[], None], turns: list[UserUtterance]
) -> None:
    """Feed ``pcm`` frame by frame; ``listen()`` after each; the turns it ended go to
    ``turns``. Work that is done is seen at the next frame."""
    for frame in frames(pcm):
        for event in listener.process(frame):
            if isinstance(event, UserUtterance):
                turns.append(event)
        listen()
        await asyncio.sleep(0)
