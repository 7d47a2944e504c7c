"""ARI's REST transport: one aiohttp session, one call at a time, its errors translated.

REST errors become ``AriHttpError`` (a ``PbxError`` carrying the HTTP status); connection
errors become ``PbxUnavailable``. Asterisk closes idle keep-alive connections after 15 s, so
the connector keeps them 5 s at most and idempotent requests are retried once on a dropped
connection. The events websocket (``ari/event_stream``) is opened from the same session.

Asterisk's HTTP server, which ARI and the calls' chan_websocket media legs share, listens with a
backlog of 10 (``ss -ltn`` shows it): a connection dialed while 10 wait to be accepted loses
its SYN and is dialed again only a second later. A hundred calls answered together did that to
a few of their media websockets (the party heard the greeting after 1.1 s where the others did
within 0.5 s), so whatever dials this server (ARI's connections, ``media/transports.py``'s
websockets) dials at most ``HTTP_CONNECTS_AT_ONCE`` at once (``AriRest.dialing``). And every
open connection is one of its sessions (``sessionlimit``, 100 by default), which every media
leg needs one of too: ARI's requests share at most ``ARI_CONNECTIONS``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypedDict

import aiohttp

from voicedock.config import AsteriskSettings
from voicedock.domain.json import JsonValue
from voicedock.errors import PbxError, PbxUnavailable

if TYPE_CHECKING:
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.tracing import Trace

__all__ = ["ARI_CONNECTIONS", "HTTP_CONNECTS_AT_ONCE", "AriHttpError", "AriRest", "RequestOptions"]

# Connections being dialed to the server at once (its listen backlog is 10).
HTTP_CONNECTS_AT_ONCE = 8


class RequestOptions(TypedDict, total=False):
    """A REST call's options beside its method and path (``AriRest.request``'s)."""

    params: Mapping[str, str] | None
    body: Mapping[str, JsonValue] | None
    retry_dropped: bool | None


class AriHttpError(PbxError):
    """Asterisk answered a REST call with an error status."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"ARI {method} {path}: {status} {message}")
        self.status = status
        self.message = message


# The connections ARI's requests share at most (the module's doc says why); a request beyond
# them waits for one (ARI answers in a few ms).
ARI_CONNECTIONS = 32


class _PacedConnector(aiohttp.TCPConnector):
    """A connector that dials at most as many connections at once as ``dialing`` lets it."""

    def __init__(self, dialing: asyncio.Semaphore) -> None:
        super().__init__(keepalive_timeout=5.0, limit=ARI_CONNECTIONS)
        self._dialing = dialing

    async def _create_connection(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's signature
    ) -> ResponseHandler:
        async with self._dialing:
            return await super()._create_connection(req, traces, timeout)


class AriRest:
    """HTTP Basic auth to ``settings.ari_url``; the session opens with the first use."""

    def __init__(self, settings: AsteriskSettings, *, request_timeout: float = 5.0) -> None:
        self.base = settings.ari_url.rstrip("/")
        self._headers = {
            "Authorization": aiohttp.encode_basic_auth(settings.ari_user, settings.ari_password)
        }
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        # Held while a connection to the server is dialed, by ARI's and the media legs'.
        self.dialing = asyncio.Semaphore(HTTP_CONNECTS_AT_ONCE)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = _PacedConnector(self.dialing)
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout, connector=connector
            )
        return self._session

    async def aclose(self) -> None:
        """Refuse further calls and close the session. Idempotent."""
        self._closed = True
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, JsonValue] | None = None,
        retry_dropped: bool | None = None,
    ) -> JsonValue:
        """One REST call; JSON result (or None for 204). Raises AriHttpError/PbxUnavailable."""
        if self._closed:
            raise PbxUnavailable("ARI client is closed")
        session = self.session()
        retry = method in ("GET", "DELETE") if retry_dropped is None else retry_dropped
        for attempt in (1, 2):
            try:
                async with session.request(
                    method, self.base + path, params=params, json=body
                ) as resp:
                    if resp.status == 204:
                        return None
                    text = await resp.text()
                    if resp.status >= 400:
                        raise AriHttpError(method, path, resp.status, _error_message(text))
                    return _json(text)
            except aiohttp.ServerDisconnectedError:
                # Asterisk closed a kept-alive connection under us.
                if attempt == 1 and retry:
                    continue
                raise PbxUnavailable(f"ARI {method} {path}: connection dropped") from None
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise PbxUnavailable(f"ARI {method} {path}: {type(exc).__name__}") from None
        raise PbxUnavailable(f"ARI {method} {path}: connection dropped")


def _json(text: str) -> JsonValue:
    if not text:
        return None
    try:
        value: JsonValue = json.loads(text)
    except ValueError:
        raise PbxError("ARI returned a body that is not JSON") from None
    return value


def _error_message(text: str) -> str:
    try:
        data = _json(text)
    except PbxError:
        return text[:200]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or "")[:200]
    return text[:200]
