"""``LazySession``: the HTTP client session of one owner (a provider client, the server
requests of a node), opened on first use and closed once.

Opened on first use, so that building the owner needs no event loop; closed by ``aclose``
(idempotent), after which asking for it raises the owner's own error: its requests fail
rather than open a new session.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp


class LazySession:
    def __init__(
        self,
        open_session: Callable[[], aiohttp.ClientSession],
        closed: Callable[[], Exception],
    ) -> None:
        """``open_session`` makes the session; ``closed`` the error raised once it is closed."""
        self._open = open_session
        self._closed_error = closed
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def get(self) -> aiohttp.ClientSession:
        if self._closed:
            raise self._closed_error()
        if self._session is None:
            self._session = self._open()
        return self._session

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
