"""``/calls`` endpoints as documented: list, outbound, detail, control."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import msgspec
from aiohttp import web

from voicedock.api.app_keys import SERVICE
from voicedock.api.audit import record_now
from voicedock.api.authentication import organization_of
from voicedock.api.body import decode_cursor, encode_cursor, query_datetime, read_json
from voicedock.api.models.base import Error, convert, parse, parse_query, reply
from voicedock.api.models.calls import (
    CallListQuery,
    CallReply,
    CallSummary,
    ControlResponse,
    OutboundCallRequest,
    OutboundCallResponse,
    control_command,
)
from voicedock.api.models.field_types import include_tests
from voicedock.api.resources import (
    REPLAYED_HEADER,
    Caller,
    Create,
    Listed,
    Page,
    Paged,
    Reply,
    Resource,
    deprecation_headers,
    mount,
)
from voicedock.calls.control import InjectContext, Transfer
from voicedock.calls.engine.outbound import Placed
from voicedock.calls.nodes.command_relay import Forwarded, ForwardedAnswer
from voicedock.calls.outbound.idempotency import Replayed, StoredAnswer
from voicedock.calls.outbound.request import DEPRECATED_ALIASES, OutboundRequest
from voicedock.calls.recordings import media_type, recording_file
from voicedock.domain.ids import is_call_id
from voicedock.domain.json import JsonObject, json_object
from voicedock.domain.records import Call, CallStatus
from voicedock.errors import BadRequest, NotFound, Unauthorized
from voicedock.service import Service
from voicedock.store.base import CallCursor, CallQuery, TimeRange
from voicedock.validation import is_token

routes = web.RouteTableDef()

LIST_PARAMS = frozenset(
    {"status", "start_date", "end_date", "campaign_id", "cursor", "include_tests"}
)
DIALING_WORDS = frozenset({"dialing", "ringing", "queued", "initiated"})


@dataclass(frozen=True, slots=True)
class _Outbound:
    """``POST /calls/outbound`` as read: the request, and the body as the client sent it (which
    a draining node hands on to another node: ``calls/nodes/drain.py``)."""

    request: OutboundRequest
    body: JsonObject


Placing = Placed | Replayed | ForwardedAnswer


async def _place(caller: Caller, asked: _Outbound) -> Placing:
    """Placed here, or by another node while this one drains (a call to dial now)."""
    drain = caller.service.drain
    if drain.draining and asked.request.scheduled_at is None:
        key = None if caller.idempotency is None else caller.idempotency.key
        forwarded = Forwarded(caller.organization_id, caller.api_key.id, asked.body, key)
        return await drain.forward(forwarded)
    return await _place_here(caller, asked)


async def _place_here(caller: Caller, asked: _Outbound) -> Placing:
    """The engine checks the request (or finds the key's earlier answer), the answer to the
    call it will place is written here and stored with the key, then the call is placed."""
    outbound = caller.service.engine.outbound
    org_id, key = caller.organization_id, caller.idempotency
    async with outbound.ask(org_id, asked.request, key, api_key_id=caller.api_key.id) as ask:
        if isinstance(ask, Replayed):
            return ask
        return await ask.place(outbound_answer(ask.placing))


def outbound_answer(placed: Placed) -> StoredAnswer:
    """``POST /calls/outbound``'s answer to the call it placed (200, ``dialing``) or scheduled
    (201): stored with an ``Idempotency-Key`` as written here, and given again as stored."""
    status = 201 if placed.scheduled else 200
    body: JsonObject = msgspec.to_builtins(OutboundCallResponse.of(placed.call_id, placed.window))
    return StoredAnswer(status, body)


def parse_outbound(_caller: Caller, body: object) -> _Outbound:
    return _Outbound(parse(body, OutboundCallRequest).request(), json_object(body) or {})


def _placed(asked: _Outbound, result: Placing) -> Reply:
    if isinstance(result, ForwardedAnswer):  # another node's answer, its headers included
        model = OutboundCallResponse if result.status in (200, 201) else Error
        return Reply(convert(result.body, model), status=result.status, headers=result.headers)
    request = asked.request
    headers: dict[str, str] = {}
    if request.deprecated:
        replacements = ", ".join(
            f"{old} -> {DEPRECATED_ALIASES[old]}" for old in request.deprecated
        )
        headers = deprecation_headers(f"deprecated fields used: {replacements}")
    replayed = isinstance(result, Replayed)
    answer = result.answer if isinstance(result, Replayed) else outbound_answer(result)
    model = OutboundCallResponse if answer.status in (200, 201) else Error  # replayed as it was
    body = convert(answer.body, model)
    return Reply(body, status=answer.status, headers=headers, replayed=replayed)


def check_list_query(q: Mapping[str, str]) -> None:
    """The list's filters, before its bounds are read."""
    status = q.get("status")
    if status is not None and status not in {s.value for s in CallStatus}:
        raise BadRequest(_bad_status(status))
    campaign_id = q.get("campaign_id")
    if campaign_id is not None and not is_token(campaign_id):
        raise BadRequest("campaign_id must be a campaign's id")
    include_tests(q.get("include_tests"))
    parse_query(q, CallListQuery)


async def _list(caller: Caller, page: Page) -> Listed[Call]:
    q = page.query
    status = q.get("status")
    query = CallQuery(
        organization_id=caller.organization_id,
        limit=page.limit,
        offset=page.offset,
        status=CallStatus(status) if status is not None else None,
        created=TimeRange(
            query_datetime(q.get("start_date"), "start_date"),
            query_datetime(q.get("end_date"), "end_date"),
        ),
        campaign_id=q.get("campaign_id"),
        after=decode_cursor(q.get("cursor")),
        include_tests=include_tests(q.get("include_tests")),
    )
    found = await caller.store.list_calls(query)
    return Listed(found.calls, found.total)


def _bad_status(status: str) -> str:
    allowed = ", ".join(s.value for s in CallStatus)
    if status in DIALING_WORDS:
        # "dialing" is what POST /calls/outbound answers; a stored call is "connecting" then.
        return (
            f"status must be one of: {allowed}; a call that is dialing or ringing is listed "
            "as connecting (use status=connecting)"
        )
    return f"status must be one of: {allowed}"


async def _detail(caller: Caller, call: Call) -> CallReply:
    store = caller.store
    return CallReply.of(call, await store.list_messages(call.id), await store.list_events(call.id))


def _cursor_of(call: Call) -> str:
    """``next_cursor``: a full page's last call (its creation time and seq)."""
    return encode_cursor(CallCursor(call.created_at, call.seq))


OUTBOUND = Create(
    path="/calls/outbound",
    parse=parse_outbound,
    run=_place,
    reply=_placed,
    idempotent=True,
)
# A call another (draining) node hands on: placed here, whatever this node does.
PLACED_HERE = dataclasses.replace(OUTBOUND, run=_place_here)

CALLS: Resource[Call] = Resource(
    path="/calls",
    noun="call",
    is_id=is_call_id,
    # "outbound" is no call id: GET /calls/outbound is 405 (Allow: POST), not a call lookup.
    id_pattern="(?!outbound$)[^{}/]+",
    lookup=lambda c, call_id: c.store.get_call(c.organization_id, call_id),
    serialize=CallSummary.of,
    list=Paged(run=_list, params=LIST_PARAMS, check=check_list_query, cursor=_cursor_of),
    detail=_detail,
    create=OUTBOUND,
)
RESOURCES = (CALLS,)
mount(routes, *RESOURCES)


def setup(app: web.Application) -> None:
    """Answer the calls draining nodes hand on to this one (once the service is open)."""

    async def take_forwarded(app: web.Application) -> None:
        service = app[SERVICE]
        service.node.commands.take_forwarded(partial(answer_forwarded, service))

    app.on_startup.append(take_forwarded)


async def answer_forwarded(service: Service, asked: Forwarded) -> ForwardedAnswer:
    """A ``POST /calls/outbound`` a draining node handed on, answered as if it came here with
    the same API key (still valid) and ``Idempotency-Key``."""
    key = await service.store.get_api_key(asked.organization_id, asked.api_key_id)
    if key is None or key.revoked_at is not None:
        raise Unauthorized("the API key is not valid")
    caller = Caller(service, asked.organization_id, key)
    reply = await PLACED_HERE.answer(caller, asked.body, asked.idempotency_key)
    headers = dict(reply.headers)
    if reply.replayed:
        headers[REPLAYED_HEADER] = "true"
    body = json_object(msgspec.to_builtins(reply.body)) or {}
    return ForwardedAnswer(reply.status, body, headers)


@routes.get("/calls/{id}/recording")
async def get_recording(request: web.Request) -> web.FileResponse:
    """The call's recording (stereo: caller left, assistant right); ranges are honoured."""
    service = request.app[SERVICE]
    call = await CALLS.fetch(request)
    if call.recording_path is None:
        raise NotFound("this call has no recording", error="Recording not found")
    path = recording_file(service.settings.recordings, call.recording_path)
    if path is None or not path.is_file():
        # Swept by the retention, or written by another node's [recordings] directory.
        raise NotFound("the recording is not available here", error="Recording not found")
    if _from_the_start(request):  # a player's later ranges of the same download: not again
        await record_now(request, "recording.downloaded", "call", call.id)
    return web.FileResponse(path, headers={"Content-Type": media_type(call.recording_path)})


def _from_the_start(request: web.Request) -> bool:
    """The request asks for the file from its first byte (the whole of it, or a first range)."""
    ranges = request.headers.get("Range", "").replace(" ", "")
    return not ranges or ranges.startswith("bytes=0-")


@routes.post("/calls/{id}/control")
async def control_call(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    call_id = CALLS.path_id(request)
    body = await read_json(request, service.settings.server.max_body_bytes)
    command = control_command(body)
    # Carried out by the node that serves the call, whichever node the request reached.
    await service.node.control(organization_of(request), call_id, command)
    if isinstance(command, InjectContext) and command.source == "supervisor":
        await record_now(request, "call.whisper", "call", call_id)
    elif isinstance(command, Transfer):
        await record_now(request, "call.take_over", "call", call_id, {"mode": command.mode})
        call = await service.store.get_call(organization_of(request), call_id)
        if call is not None and call.test_run_id is not None:  # recorded, nothing dialled
            message = f"Test call: would transfer to {command.destination}; nothing was dialled"
            return reply(ControlResponse(success=True, message=message))
    return reply(ControlResponse(success=True, message="Command sent successfully"))
