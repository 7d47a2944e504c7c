"""``GET /calls/{id}/events``: a call's live events as Server-Sent Events.

Each stored call event (status changes, transcript turns, control commands and their
results, transfer outcomes, refused commands) becomes one SSE message whose ``id`` is the
event's ``seq``::

    id: 42
    event: status
    data: {"seq":42,"call_id":"call-...","type":"status","timestamp":"...","data":{"from":...}}

The stream polls the store (``list_events(call_id, after_seq)``), so it is correct whichever
node handles the call. ``Last-Event-ID`` resumes after that event. Comments keep idle
connections alive. After the call's terminal status has been sent the stream ends; a request
for a terminal call with nothing left to send is ``204``, which tells an ``EventSource`` to
stop reconnecting. Revoking the API key the stream was opened with, or signing out of the
console session it was opened in (a session's cookie authenticates ``EventSource`` too), ends it
within ``KEY_CHECK_SECONDS``.

Each open stream polls the store, so open streams are capped: per API key and per organization
on every node together (``[limits] open_streams_per_key`` and ``open_streams_per_organization``)
and ``MAX_STREAMS`` on this node (``calls/event_streams.py``). A stream over a cap is refused
with 429 and ``Retry-After`` before anything is sent; a stream that ends (the call ended, the
client went away, the key was revoked) frees its place at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Sequence

from aiohttp import web

from voicedock.api.app_keys import API_KEY, SERVICE
from voicedock.api.authentication import credentials_still_valid, organization_of
from voicedock.api.routes.calls import CALLS
from voicedock.domain.ids import mask_call_id
from voicedock.domain.records import CallEvent, CallStatus
from voicedock.domain.timestamps import iso
from voicedock.errors import StoreError

routes = web.RouteTableDef()
log = logging.getLogger("voicedock.api")

STREAMED_TYPES = frozenset({"status", "transcript", "control", "transfer", "security", "resumed"})
TERMINAL = frozenset({CallStatus.ENDED.value, CallStatus.FAILED.value})
POLL_SECONDS = 0.3
KEEPALIVE_SECONDS = 15.0
KEY_CHECK_SECONDS = 1.0  # how soon a revoked key's open streams end
RETRY_MILLISECONDS = 2000

_EVENT_ID = re.compile(r"[0-9]{1,18}")


class StreamState:
    """Per-application: the signal that the server is shutting down (open streams end)."""

    def __init__(self) -> None:
        self.closing = asyncio.Event()


STREAMS: web.AppKey[StreamState] = web.AppKey("call_event_streams", StreamState)


def setup(app: web.Application) -> None:
    """Register the route and end open streams when the server shuts down."""
    app[STREAMS] = StreamState()

    async def on_shutdown(app: web.Application) -> None:
        app[STREAMS].closing.set()

    app.on_shutdown.append(on_shutdown)
    app.add_routes(routes)


def encode_event(event: CallEvent) -> bytes:
    """One SSE message (pure). JSON never contains a raw newline, so ``data`` is one line."""
    payload = {
        "seq": event.seq,
        "call_id": event.call_id,
        "type": event.type,
        "timestamp": iso(event.created_at),
        "data": event.data,
    }
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n".encode()


def last_event_id(header: str | None) -> int:
    """The ``seq`` to resume after; anything that is not one we sent restarts from 0."""
    if header is None or _EVENT_ID.fullmatch(header.strip()) is None:
        return 0
    return int(header.strip())


def is_terminal(event: CallEvent) -> bool:
    return event.type == "status" and event.data.get("to") in TERMINAL


def visible(events: Sequence[CallEvent]) -> list[CallEvent]:
    return [e for e in events if e.type in STREAMED_TYPES]


@routes.get("/calls/{id}/events")
async def call_events(request: web.Request) -> web.StreamResponse:
    store = request.app[SERVICE].store
    call = await CALLS.fetch(request)
    after = last_event_id(request.headers.get("Last-Event-ID"))
    pending = await store.list_events(call.id, after)
    if call.status.terminal and not visible(pending):
        return web.Response(status=204)
    state = request.app[STREAMS]
    streams = request.app[SERVICE].event_streams
    async with streams.opened(request[API_KEY].id, organization_of(request)):
        return await _stream(request, state, call.id, after, pending, call.status.terminal)


async def _stream(
    request: web.Request,
    state: StreamState,
    call_id: str,
    after: int,
    pending: list[CallEvent],
    ended: bool,
) -> web.StreamResponse:
    """Send ``pending`` and whatever follows; ``ended``: the call was already terminal, so
    what is stored now is all there is."""
    store = request.app[SERVICE].store
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # reverse proxies must not buffer the stream
        }
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    try:
        await response.write(f"retry: {RETRY_MILLISECONDS}\n\n".encode())
        idle_since = key_checked = loop.time()
        while not state.closing.is_set():
            for event in pending:
                after = event.seq
                if event.type in STREAMED_TYPES:
                    await response.write(encode_event(event))
                    idle_since = loop.time()
                ended = ended or is_terminal(event)
            if ended:
                break  # the terminal status was sent; later events belong to the record
            if request.transport is None or request.transport.is_closing():
                return response  # the client went away: free its place now
            if loop.time() - key_checked >= KEY_CHECK_SECONDS:
                if not await credentials_still_valid(request):
                    break  # revoked or signed out: the reconnection is refused with 401
                key_checked = loop.time()
            if loop.time() - idle_since >= KEEPALIVE_SECONDS:
                await response.write(b": keep-alive\n\n")
                idle_since = loop.time()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await state.closing.wait()
            pending = await store.list_events(call_id, after)
    except ConnectionError:
        return response  # the client went away
    except StoreError:
        # The headers are sent, so no error body: end the stream; the client resumes with
        # Last-Event-ID.
        log.warning(
            "call %s: event stream ended by a store error", mask_call_id(call_id), exc_info=True
        )
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response
