"""Webhook event payloads.

Every payload is one JSON object::

    {"type": "status-update", "call_id": "...", "timestamp": "2026-01-01T10:00:00.000Z",
     "data": {...}}

``timestamp`` is when the event happened (not when it is delivered; the ``webhook-timestamp``
header carries the attempt time). Builders take plain values and mappings, so they can be fed
``dataclasses.asdict(call)`` or a database row without importing the store's models; what they
return is a ``CallEventPayload`` (a campaign's events: ``CampaignEventPayload``), JSON-ready.
The payload goes to the customer's own endpoint, so it may hold the transcript and phone
numbers; it must never be logged.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import NotRequired, TypeAlias, TypedDict

import msgspec

from voicedock.domain.attestation import CallerAttestation
from voicedock.domain.json import JsonObject, JsonValue
from voicedock.domain.timestamps import iso
from voicedock.domain.webhooks import EventType


class CallEventPayload(TypedDict):
    """The envelope of a call's event (docs/webhooks.md), in the order it is sent."""

    type: str
    call_id: str
    timestamp: str
    data: JsonObject
    metadata: NotRequired[JsonObject]  # the call's own object, when it was placed with one


class CampaignEventPayload(TypedDict):
    """The envelope of a campaign's event: ``call_id`` only on a contact's update."""

    type: str
    campaign_id: str
    call_id: NotRequired[str | None]
    timestamp: str
    data: JsonObject


class RunEventPayload(TypedDict):
    """The envelope of a test suite's run's event."""

    type: str
    test_run_id: str
    timestamp: str
    data: JsonObject


class OrganizationEventPayload(TypedDict):
    """The envelope of an event about the organization itself, not one of its calls, campaigns
    or runs (``spend-threshold``, ``phone-number-health``)."""

    type: str
    organization_id: str
    timestamp: str
    data: JsonObject


WebhookPayload: TypeAlias = (
    CallEventPayload | CampaignEventPayload | RunEventPayload | OrganizationEventPayload
)


# The ``data`` of each call event type (docs/webhooks.md), in the order its keys are sent; the
# end-of-call report's is the whitelisted call record (``END_OF_CALL_FIELDS``).
class StatusData(TypedDict):
    status: str
    previous_status: str | None
    end_reason: NotRequired[str]
    error: NotRequired[str]
    resumed: NotRequired[JsonObject]  # the gap of a call that went on after a restart


class TranscriptData(TypedDict):
    role: str
    content: str
    is_final: bool
    member: NotRequired[str]  # a call placed with a squad: the member whose turn it was


class ToolCall(TypedDict):
    id: str
    name: str
    arguments: JsonObject


class ToolCallsData(TypedDict):
    assistant_id: str | None
    tool_call: ToolCall


class AssistantRequestData(TypedDict):
    caller: str | None
    called: str
    number_id: str
    # The caller's STIR/SHAKEN attestation as the carrier sent it (null: none; not verified).
    caller_attestation: JsonValue


class TransferData(TypedDict):
    status: str
    destination: str
    mode: NotRequired[str]
    error: NotRequired[str]


class AnsweringMachineData(TypedDict):
    result: str
    evidence: JsonObject


# ``from`` is a keyword: the functional form.
HandoffData = TypedDict("HandoffData", {"from": str, "to": str, "reason": str | None})
ProviderSwitchData = TypedDict(
    "ProviderSwitchData", {"engine": str, "from": str, "to": str | None, "reason": str}
)


# Fields of the final call record that belong in the end-of-call report. A whitelist, so an
# internal field added to the call record later (a PBX channel name, a resolved assistant
# configuration with provider keys) does not leak to customers by default.
END_OF_CALL_FIELDS = (
    "status",
    "direction",
    "end_reason",
    "error",
    "caller_phone",
    "assistant_phone",
    "number_id",
    "assistant_id",
    "agent_name",
    "business_name",
    "created_at",
    "started_at",
    "ended_at",
    "duration_seconds",
    "summary",
    "analysis_result",
    "latency",
    "timings",
    "recording_duration_seconds",
    "answering_machine",
    "consent",
    "ai_disclosure",
    "caller_attestation",
    "usage",
    "cost",
    "provider_switches",
    "squad_id",
    "members",
)
MESSAGE_FIELDS = ("role", "content", "started_at", "ended_at", "interrupted", "member")


def _json_value(value: object) -> JsonValue:
    """Make a value from a call record JSON-ready (datetimes, enums, nested containers)."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _json_value(value.value)
    if isinstance(value, Mapping):
        return _json_object(value)
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if value is None or isinstance(value, str | int | float):
        return value
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _json_object(value: Mapping[str, object]) -> JsonObject:
    return {str(key): _json_value(item) for key, item in value.items()}


def build_event(
    event_type: EventType, call_id: str, at: datetime, data: Mapping[str, object]
) -> CallEventPayload:
    """The envelope shared by every event type."""
    if not call_id:
        raise ValueError("call_id is required")
    return {
        "type": str(event_type),
        "call_id": call_id,
        "timestamp": iso(at),
        "data": _json_object(data),
    }


def with_metadata(
    payload: CallEventPayload, metadata: Mapping[str, JsonValue] | None
) -> CallEventPayload:
    """The payload of an event about a call placed with ``metadata``: it carries the object
    beside ``call_id``, as the client gave it (none: unchanged)."""
    if metadata is None:
        return payload
    return {**payload, "metadata": dict(metadata)}


def status_update(
    call_id: str,
    status: str,
    *,
    at: datetime,
    previous_status: str | None = None,
    end_reason: str | None = None,
    error: str | None = None,
    resumed: Mapping[str, JsonValue] | None = None,
) -> CallEventPayload:
    """The call moved to ``status`` (``connecting``, ``in-progress``, ``ended``, ``failed``),
    or (``resumed``: the gap) went on ``in-progress`` after a restart of voicedock."""
    data: StatusData = {"status": status, "previous_status": previous_status}
    if end_reason is not None:
        data["end_reason"] = end_reason
    if error is not None:
        data["error"] = error
    if resumed is not None:
        data["resumed"] = dict(resumed)
    return build_event(EventType.STATUS_UPDATE, call_id, at, data)


def transcript(
    call_id: str,
    role: str,
    content: str,
    *,
    at: datetime,
    is_final: bool = True,
    member: str | None = None,
) -> CallEventPayload:
    """One utterance by ``role`` (``user``/``assistant``); interim results have is_final=False;
    ``member``: the squad's member whose turn it was."""
    data: TranscriptData = {"role": role, "content": content, "is_final": is_final}
    if member is not None:
        data["member"] = member
    return build_event(EventType.TRANSCRIPT, call_id, at, data)


def tool_calls(
    call_id: str,
    *,
    at: datetime,
    assistant_id: str | None,
    tool_call_id: str,
    name: str,
    arguments: Mapping[str, JsonValue],
) -> CallEventPayload:
    """The model of ``call_id`` called the webhook tool ``name``; the answer's ``result``
    (any JSON) goes back to the model, an ``error`` (text) tells it the tool failed."""
    data: ToolCallsData = {
        "assistant_id": assistant_id,
        "tool_call": {"id": tool_call_id, "name": name, "arguments": dict(arguments)},
    }
    return build_event(EventType.TOOL_CALLS, call_id, at, data)


def assistant_request(
    call_id: str,
    *,
    at: datetime,
    caller: str | None,
    called: str,
    number_id: str,
    attestation: CallerAttestation | None = None,
) -> CallEventPayload:
    """An inbound call to ``called`` waits for its assistant: the answer names one
    (``assistant_id``), gives one (``assistant``, a transient configuration) or refuses the
    call (``error``, spoken to the caller before the hang-up)."""
    data: AssistantRequestData = {
        "caller": caller,
        "called": called,
        "number_id": number_id,
        "caller_attestation": msgspec.to_builtins(attestation),
    }
    return build_event(EventType.ASSISTANT_REQUEST, call_id, at, data)


def transfer_update(
    call_id: str,
    status: str,
    *,
    at: datetime,
    destination: str,
    mode: str | None = None,
    error: str | None = None,
) -> CallEventPayload:
    """A transfer progressed: ``started``, ``ringing``, ``answered``, ``completed``, ``failed``
    (``simulated``: a test call's, recorded and never dialled)."""
    data: TransferData = {"status": status, "destination": destination}
    if mode is not None:
        data["mode"] = mode
    if error is not None:
        data["error"] = error
    return build_event(EventType.TRANSFER_UPDATE, call_id, at, data)


def answering_machine(
    call_id: str, result: str, *, at: datetime, evidence: Mapping[str, JsonValue]
) -> CallEventPayload:
    """Who answered an outbound call: ``human``, ``machine``, ``screening`` (a call-screening
    assistant) or ``unknown``, and the timings the verdict rests on (milliseconds of the
    callee's audio)."""
    data: AnsweringMachineData = {"result": result, "evidence": dict(evidence)}
    return build_event(EventType.ANSWERING_MACHINE, call_id, at, data)


def phone_menu(call_id: str, step: Mapping[str, JsonValue], *, at: datetime) -> CallEventPayload:
    """A step of a phone menu's navigation (docs/phone-menus.md): what the line said
    (``heard``: ``menu``, ``hold``, ``person``, ``timeout``; ``words``), the keys pressed
    (``pressed``), and when (``at_ms``, ``music_ms``, ``quiet_ms``: of the line's audio)."""
    return build_event(EventType.PHONE_MENU, call_id, at, step)


def provider_switch(
    call_id: str, engine: str, source: str, to: str | None, reason: str, *, at: datetime
) -> CallEventPayload:
    """A call's ``engine`` (``llm``, ``stt``, ``tts``, ``realtime``) moved on from one entry of
    its fallback plan (``source``, a label: provider, host, model) to the next (``to``; None:
    none was left), and why (``timeout``, ``rate-limited``, ``connection``, ``bad-response``,
    ``error``, ``breaker-open``; ``slow``: a model another entry answered before)."""
    data: ProviderSwitchData = {"engine": engine, "from": source, "to": to, "reason": reason}
    return build_event(EventType.PROVIDER_SWITCH, call_id, at, data)


def handoff(
    call_id: str, source: str, to: str, reason: str | None, *, at: datetime
) -> CallEventPayload:
    """A call placed with a squad went on with another member: the member who handed it over
    (``source``), the one who speaks now (``to``), and the reason its model gave (None: none)."""
    data: HandoffData = {"from": source, "to": to, "reason": reason}
    return build_event(EventType.HANDOFF, call_id, at, data)


def end_of_call_report(
    call: Mapping[str, object],
    messages: Iterable[Mapping[str, object]],
    *,
    at: datetime,
) -> CallEventPayload:
    """The final record of a call: outcome, timings, transcript, analysis and transfer.

    ``call`` is the call record as a mapping (it must have ``id``); ``messages`` the
    conversation in order. ``duration_seconds`` is derived from ``started_at``/``ended_at``
    when the record does not carry it.
    """
    call_id = call.get("id")
    if not isinstance(call_id, str):
        raise ValueError("the call record has no id")  # noqa: TRY004 - a bad value, not a bad type
    data: dict[str, object] = {name: call.get(name) for name in END_OF_CALL_FIELDS}
    data["duration_seconds"] = _duration(call)
    data["messages"] = [
        {name: m.get(name) for name in MESSAGE_FIELDS if name in m and not _unnamed(name, m)}
        for m in messages
    ]
    data["transfer"] = _transfer(call)
    return build_event(EventType.END_OF_CALL_REPORT, call_id, at, data)


def _unnamed(name: str, message: Mapping[str, object]) -> bool:
    """A message's ``member`` left out where none is named (a call with one assistant)."""
    return name == "member" and message.get(name) is None


def _duration(call: Mapping[str, object]) -> int | None:
    recorded = call.get("duration_seconds")
    if isinstance(recorded, int):
        return recorded
    started, ended = call.get("started_at"), call.get("ended_at")
    if isinstance(started, datetime) and isinstance(ended, datetime):
        return max(0, round((ended - started).total_seconds()))
    return None


def _transfer(call: Mapping[str, object]) -> Mapping[str, object] | None:
    explicit = call.get("transfer")
    if isinstance(explicit, Mapping):
        return explicit
    destination = call.get("transferred_to")
    if destination is None:
        return None
    return {"destination": destination, "transferred_at": call.get("transferred_at")}


def encode_payload(payload: WebhookPayload) -> bytes:
    """The exact bytes that are signed and sent: compact UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
