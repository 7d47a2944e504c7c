"""One live session over a provider's websocket (Deepgram's recognition stream, a realtime
speech-to-speech conversation): ``async with`` or ``connect()``/``aclose()``.

The session owns its socket and the tasks that use it: the reader, which turns the
provider's messages into items (or the ``ProviderError`` that ends them), and whatever else
the provider needs once connected (a keep-alive, a first message: ``_connected``). Iterating
yields the items in arrival order until the reader ends. ``aclose()`` is idempotent: it stops
what ``_closing`` names first (nothing is sent once the socket closes), closes the socket,
then stops the tasks and ends the items.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Generic, Self, TypeVar

import aiohttp

from voicedock.aio import Closable, Supervisor, started
from voicedock.pipeline.providers._http import (
    OwnedSession,
    SocketItems,
    live_socket,
    open_websocket,
    too_big,
    too_large,
)

log = logging.getLogger("voicedock.pipeline.providers")

_Item = TypeVar("_Item")


class SocketSession(Closable, Generic[_Item]):
    """``provider`` names it in errors and task names; ``what`` is what voicedock closed
    when a send comes too late ("the stream is closed")."""

    def __init__(
        self,
        provider: str,
        what: str,
        session: OwnedSession,
        url: str,
        headers: Mapping[str, str],
    ) -> None:
        self._provider = provider
        self._what = what
        self._session = session
        self._url = url
        self._headers = dict(headers)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._items: SocketItems[_Item] = SocketItems()
        self._tasks = Supervisor(f"{provider} {what}", log)  # the reader and _connected's
        self._closed = False

    async def __aenter__(self) -> Self:
        return await started(self, self.connect)  # a start failing half way is closed

    async def connect(self) -> None:
        self._ws = await open_websocket(self._provider, self._session, self._url, self._headers)
        await self._tasks.start()
        self._tasks.spawn(self._read(self._ws), name=f"{self._provider}-reader")
        await self._connected(self._ws)

    async def _connected(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """What connecting does once the reader runs (nothing more here)."""

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Put the items of the provider's messages until the socket ends, then end them."""
        raise NotImplementedError

    def _socket(self) -> aiohttp.ClientWebSocketResponse:
        """The socket to send on (``ProviderConnectionError`` once closed or broken)."""
        return live_socket(self._provider, self._ws, closed=self._closed, what=self._what)

    async def _over_cap(self, msg: aiohttp.WSMessage) -> bool:
        """Whether ``msg`` is the socket's refusal of a message over the caps' size; if so,
        its error is put (the reader then ends)."""
        if not too_big(msg):
            return False
        cap = self._session.caps.websocket_message_bytes
        await self._items.put(too_large(self._provider, "message", cap))
        return True

    def __aiter__(self) -> AsyncIterator[_Item]:
        return aiter(self._items)

    async def _closing(self) -> None:
        """What stops before the socket closes (nothing here)."""

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._closing()
        if self._ws is not None:
            await self._ws.close()
        await self._tasks.aclose()
        await self._items.end()
