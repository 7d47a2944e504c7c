"""``/calls`` endpoints as documented: list, outbound, detail, control."""

from __future__ import annotations

import hashlib
import re

from aiohttp import web

from voicedock.api.body import (
    MAX_OFFSET,
    canonical_hash_input,
    decode_cursor,
    encode_cursor,
    query_datetime,
    query_int,
    read_json,
)
from voicedock.api.keys import API_KEY, SERVICE
from voicedock.api.middleware import organization_of
from voicedock.api.models.base import Error, convert, parse, parse_query, reply
from voicedock.api.models.calls import (
    COMMANDS,
    CallList,
    CallListQuery,
    CallSummary,
    ControlResponse,
    OutboundCallRequest,
    OutboundCallResponse,
    Pagination,
)
from voicedock.api.models.calls import Call as CallReply
from voicedock.calls.control import parse_control
from voicedock.calls.idempotency import IdempotencyKey
from voicedock.calls.outbound_request import DEPRECATED_ALIASES, parse_outbound_request
from voicedock.calls.recordings import media_type, recording_file
from voicedock.domain.ids import is_call_id
from voicedock.domain.records import Call, CallStatus
from voicedock.errors import BadRequest, NotFound
from voicedock.store.base import CallCursor, CallQuery
from voicedock.validation import is_token

routes = web.RouteTableDef()

LIST_PARAMS = frozenset(
    {"limit", "offset", "status", "start_date", "end_date", "campaign_id", "cursor"}
)
DIALING_WORDS = frozenset({"dialing", "ringing", "queued", "initiated"})
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@routes.post("/calls/outbound")
async def place_outbound(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    body = await read_json(request, service.settings.server.max_body_bytes)
    parsed = parse_outbound_request(body)  # the call's meaning: policy, aliases, assistant
    parse(body, OutboundCallRequest)  # and nothing the document does not say
    idempotency = None
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        if _IDEMPOTENCY_KEY.fullmatch(key) is None:
            raise BadRequest("Idempotency-Key must be 1-255 printable ASCII characters")
        digest = hashlib.sha256(canonical_hash_input(body)).hexdigest()
        idempotency = IdempotencyKey(key, digest)
    result = await service.engine.place_outbound(
        organization_of(request), parsed, idempotency, api_key_id=request[API_KEY].id
    )
    answer = OutboundCallResponse if result.status in (200, 201) else Error  # replayed as it was
    response = reply(convert(result.body, answer), status=result.status)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if parsed.deprecated:
        replacements = ", ".join(f"{old} -> {DEPRECATED_ALIASES[old]}" for old in parsed.deprecated)
        response.headers["Deprecation"] = "true"
        response.headers["Warning"] = f'299 - "deprecated fields used: {replacements}"'
        response.headers["Link"] = '</openapi.json>; rel="deprecation"; type="application/json"'
    return response


@routes.get("/calls")
async def list_calls(request: web.Request) -> web.Response:
    q = request.query
    unknown = sorted(set(q) - LIST_PARAMS)
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}")
    if any(len(q.getall(name)) > 1 for name in q):
        raise BadRequest("each query parameter may appear only once")
    status = q.get("status")
    if status is not None and status not in {s.value for s in CallStatus}:
        raise BadRequest(_bad_status(status))
    campaign_id = q.get("campaign_id")
    if campaign_id is not None and not is_token(campaign_id):
        raise BadRequest("campaign_id must be a campaign's id")
    parse_query(q, CallListQuery)
    query = CallQuery(
        organization_id=organization_of(request),
        limit=query_int(q.get("limit"), "limit", 100, 1, 1000),
        offset=query_int(q.get("offset"), "offset", 0, 0, MAX_OFFSET),
        status=CallStatus(status) if status is not None else None,
        start_date=query_datetime(q.get("start_date"), "start_date"),
        end_date=query_datetime(q.get("end_date"), "end_date"),
        campaign_id=campaign_id,
        after=decode_cursor(q.get("cursor")),
    )
    page = await request.app[SERVICE].store.list_calls(query)
    full = len(page.calls) == query.limit and page.calls
    return reply(
        CallList(
            calls=[CallSummary.of(c) for c in page.calls],
            pagination=Pagination(total=page.total, limit=query.limit, offset=query.offset),
            next_cursor=encode_cursor(_cursor_of(page.calls[-1])) if full else None,
        )
    )


def _bad_status(status: str) -> str:
    allowed = ", ".join(s.value for s in CallStatus)
    if status in DIALING_WORDS:
        # "dialing" is what POST /calls/outbound answers; a stored call is "connecting" then.
        return (
            f"status must be one of: {allowed}; a call that is dialing or ringing is listed "
            "as connecting (use status=connecting)"
        )
    return f"status must be one of: {allowed}"


def _call_id(request: web.Request) -> str:
    call_id = request.match_info["id"]
    if not is_call_id(call_id):
        raise NotFound("no call with this id", error="Call not found")
    return call_id


# "outbound" is no call id: GET /calls/outbound is 405 (Allow: POST), not a call lookup.
@routes.get(r"/calls/{id:(?!outbound$)[^{}/]+}")
async def get_call(request: web.Request) -> web.Response:
    store = request.app[SERVICE].store
    call = await store.get_call(organization_of(request), _call_id(request))
    if call is None:
        raise NotFound("no call with this id", error="Call not found")
    messages = await store.list_messages(call.id)
    events = await store.list_events(call.id)
    return reply(CallReply.of(call, messages, events))


@routes.get("/calls/{id}/recording")
async def get_recording(request: web.Request) -> web.FileResponse:
    """The call's recording (stereo: caller left, assistant right); ranges are honoured."""
    service = request.app[SERVICE]
    call = await service.store.get_call(organization_of(request), _call_id(request))
    if call is None:
        raise NotFound("no call with this id", error="Call not found")
    if call.recording_path is None:
        raise NotFound("this call has no recording", error="Recording not found")
    path = recording_file(service.settings.recordings, call.recording_path)
    if path is None or not path.is_file():
        # Swept by the retention, or written by another node's [recordings] directory.
        raise NotFound("the recording is not available here", error="Recording not found")
    return web.FileResponse(path, headers={"Content-Type": media_type(call.recording_path)})


@routes.post("/calls/{id}/control")
async def control_call(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    call_id = _call_id(request)
    body = await read_json(request, service.settings.server.max_body_bytes)
    command = parse_control(body)
    parse(body, COMMANDS[body["type"]])  # type: ignore[index]  # parse_control knows the type
    # Carried out by the node that serves the call, whichever node the request reached.
    await service.node.control(organization_of(request), call_id, command)
    return reply(ControlResponse(success=True, message="Command sent successfully"))


def _cursor_of(call: Call) -> CallCursor:
    return CallCursor(call.created_at, call.seq)
