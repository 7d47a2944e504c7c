"""The other workers of this machine (``voicedock serve --workers N``), as one of them sees
them: each reached on its own port (``config/workers.py``), where its ``/health`` answers for
itself alone and its calls' live audio can be listened to.

* ``GET /health`` on the machine's API port answers for the machine: the worker the request
  reached asks each other worker's ``/health`` (``health``, at most ``HEALTH_WAIT`` each) and
  lists them all (``routes/health.py``);
* ``GET /calls/{id}/listen`` for a call another worker of the machine serves is relayed to
  that worker's own port (``relay_websocket``): its refusals as it answered them, then its
  stream, both ways, until either side closes. Control commands need no relay: they travel
  through the database to any node (``calls/nodes/command_relay.py``).
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import msgspec
from aiohttp import WSMsgType, web

from voicedock.aio import all_of, first_of
from voicedock.api.models.health import Health, WorkerHealth
from voicedock.calls.errors import NodeUnavailable
from voicedock.config.workers import WorkerPlace
from voicedock.egress.lazy_session import LazySession

HEALTH_WAIT = 3.0  # seconds; a worker's own health waits up to 2 s for the database
CONNECT_WAIT = 5.0  # seconds to reach another worker's own port
UPSTREAM_MESSAGE = 1024 * 1024  # what another worker sends is its own stream: any frame
# What the machine's other workers are told of the request relayed to them.
_RELAYED = ("Authorization", "Cookie", "Origin")


class Machine:
    def __init__(self, place: WorkerPlace) -> None:
        self.place = place
        self._session = LazySession(
            lambda: aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_WAIT)
            ),
            lambda: NodeUnavailable("this worker is stopping"),
        )

    def url_of(self, node_id: str, path: str) -> str | None:
        """``path`` on the own port of the machine's worker ``node_id``; None for a node
        that is not another worker of this machine."""
        port = self.place.others().get(node_id)
        if port is None:
            return None
        host = self.place.reach()
        return f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"

    def on_shared_port(self, request: web.Request) -> bool:
        """The request came in on the machine's API port (not this worker's own)."""
        transport = request.transport
        address = transport.get_extra_info("sockname") if transport is not None else None
        return isinstance(address, tuple) and address[1] == self.place.port

    async def health(self) -> list[WorkerHealth]:
        """Each other worker's own ``/health``, in the order of their ids."""
        others = sorted(self.place.others(), key=lambda n: self.place.others()[n])
        return await all_of(*(self._health_of(node) for node in others))

    async def _health_of(self, node: str) -> WorkerHealth:
        url = self.url_of(node, "/health")
        assert url is not None
        try:
            async with asyncio.timeout(HEALTH_WAIT):
                async with self._session.get().get(url) as resp:
                    found = msgspec.json.decode(await resp.read(), type=Health)
        except (aiohttp.ClientError, OSError, TimeoutError, msgspec.DecodeError):
            return WorkerHealth(node=node, status="down", can_place_calls=False, draining=False)
        return WorkerHealth(
            node=node,
            status=found.status,
            can_place_calls=found.can_place_calls,
            draining=found.draining,
        )

    async def relay_websocket(
        self, request: web.Request, url: str, *, heartbeat: float, max_msg_size: int
    ) -> web.StreamResponse:
        """The websocket ``request`` asks for, served by another worker at ``url``: its
        refusal as it answered it (before any upgrade), or its messages to the client and
        the client's to it until either closes (``max_msg_size``: what the client may send)."""
        headers = {name: request.headers[name] for name in _RELAYED if name in request.headers}
        headers["Host"] = request.host  # the worker checks a browser's origin against it
        session = self._session.get()
        try:
            upstream = await session.ws_connect(
                url, headers=headers, heartbeat=heartbeat, max_msg_size=UPSTREAM_MESSAGE
            )
        except aiohttp.WSServerHandshakeError:
            return await self._refusal(url, headers)
        except (aiohttp.ClientError, OSError) as exc:
            raise NodeUnavailable(
                f"the worker of this machine serving the call did not answer ({exc}); it may "
                "be restarting: retry shortly"
            ) from None
        async with upstream:
            ws = web.WebSocketResponse(heartbeat=heartbeat, max_msg_size=max_msg_size)
            await ws.prepare(request)
            try:
                first = await first_of(_pump(upstream, ws), _pump(ws, upstream))
            finally:
                code = upstream.close_code if first is None or first[0] == 0 else None
                with contextlib.suppress(ConnectionError):
                    await ws.close(code=code or aiohttp.WSCloseCode.OK)
            return ws

    async def _refusal(self, url: str, headers: dict[str, str]) -> web.Response:
        """What the worker answers the request without an upgrade: its refusal (404, 409,
        429 with ``Retry-After``) as it gave it."""
        async with self._session.get().get(url, headers=headers) as resp:
            kept = {k: v for k in ("Content-Type", "Retry-After") if (v := resp.headers.get(k))}
            return web.Response(status=resp.status, body=await resp.read(), headers=kept)

    async def aclose(self) -> None:
        await self._session.aclose()


Socket = aiohttp.ClientWebSocketResponse | web.WebSocketResponse


async def _pump(source: Socket, sink: Socket) -> None:
    """``source``'s messages to ``sink`` until ``source`` closes."""
    async for message in source:
        if message.type is WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type is WSMsgType.ERROR:
            return


MACHINE: web.AppKey[Machine] = web.AppKey("machine", Machine)

__all__ = ["HEALTH_WAIT", "MACHINE", "Machine"]
