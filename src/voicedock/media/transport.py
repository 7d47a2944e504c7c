"""What every PBX's media transport shares: why a call's media ended, what a websocket raises
when its connection is gone, and the bounded queue put that drops the oldest item."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import TypeVar

import aiohttp

TRANSPORT_ERRORS = (ConnectionError, aiohttp.ClientError, OSError)
"""What a websocket send/receive/close raises when the connection is gone."""

T = TypeVar("T")


class CloseReason(StrEnum):
    LOCAL = "local"  # aclose() on our side
    HANGUP = "hangup"  # we asked the PBX to end the call's media and it closed the socket
    PEER = "peer"  # the PBX closed the socket (call hung up, channel deleted)
    BROKEN = "broken"  # transport error or protocol failure


def put_dropping_oldest(queue: asyncio.Queue[T], item: T) -> bool:
    """Put without waiting; if full, drop the oldest item. Returns False if one was dropped."""
    dropped = False
    while True:
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            queue.get_nowait()
            dropped = True
        else:
            return not dropped
