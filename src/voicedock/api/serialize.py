"""Domain records → the documented JSON shapes (timestamps ISO 8601 UTC with ``Z``)."""

from __future__ import annotations

from datetime import UTC, datetime

from voicedock.domain.records import (
    ApiKey,
    Assistant,
    Call,
    CallEvent,
    CallMessage,
    JsonObject,
    PhoneNumber,
    Trunk,
)
from voicedock.domain.secret_fields import masked
from voicedock.domain.usage import call_usage


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def call_summary(call: Call) -> JsonObject:
    """The fields of a ``GET /calls`` list item, in the documented order."""
    return {
        "id": call.id,
        "caller_phone": call.caller_phone,
        "assistant_phone": call.assistant_phone,
        "status": call.status.value,
        "error": call.error,
        "started_at": iso(call.started_at),
        "ended_at": iso(call.ended_at),
        "duration_seconds": call.duration_seconds,
        "summary": call.summary,
        "agent_name": call.agent_name,
        "business_name": call.business_name,
        "created_at": iso(call.created_at),
        "updated_at": iso(call.updated_at),
        "campaign_id": call.campaign_id,  # an addition: the campaign it dials a contact of
    }


def call_detail(call: Call, messages: list[CallMessage], events: list[CallEvent]) -> JsonObject:
    """Every field of the documented ``GET /calls/{id}`` example, then voicedock's additions."""
    analysis = call.analysis_result
    body = call_summary(call)
    campaign_id = body.pop("campaign_id")  # with the other additions, after the seed's fields
    body.update(
        {
            "analysis_result": None if analysis is None else _analysis(analysis),
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "agent_id": call.assistant_id,
            "number_id": call.number_id,
            "phone_number": call.assistant_phone,
            # additions beyond the documented example
            "direction": call.direction.value,
            "end_reason": call.end_reason,
            "transferred_to": call.transferred_to,
            "transferred_at": iso(call.transferred_at),
            "node": call.owner_node,
            "campaign_id": campaign_id,
            "pbx": call.pbx,
            "api_key_id": call.api_key_id,
            "latency": call.latency,
            "timings": call.timings,
            "recording_url": recording_url(call),
            "recording_duration_seconds": call.recording_duration_seconds,
            "answering_machine": call.answering_machine,
            "usage": call_usage(call),
            "events": [
                {"type": e.type, "data": e.data, "created_at": iso(e.created_at)} for e in events
            ],
        }
    )
    return body


def recording_url(call: Call) -> str | None:
    """Where the call's recording downloads (``GET /calls/{id}/recording``), if it has one."""
    return f"/calls/{call.id}/recording" if call.recording_path else None


def _analysis(analysis: JsonObject) -> JsonObject:
    """The documented ``summary`` and ``sentiment``, plus how they were made (``method``:
    "llm" or "heuristic") when the analysis says so, and the analysis plan's results."""
    body: JsonObject = {
        "summary": analysis.get("summary"),
        "sentiment": analysis.get("sentiment"),
    }
    if analysis.get("method") is not None:
        body["method"] = analysis["method"]
    # What the assistant's analysis plan asked for (only when it asked).
    for key in ("structured_data", "structured_data_error", "success_evaluation"):
        if key in analysis:
            body[key] = analysis[key]
    return body


def assistant_json(a: Assistant) -> JsonObject:
    return {
        "id": a.id,
        "name": a.name,
        "business_name": a.business_name or None,  # null: none
        "active": a.active,
        **masked(a.config),  # provider keys are write-only
        "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at),
    }


def number_json(n: PhoneNumber) -> JsonObject:
    return {
        "id": n.id,
        "number": n.number,
        "trunk": n.trunk,
        "max_concurrent_calls": n.max_concurrent_calls,
        "assistant_id": n.assistant_id,
        "label": n.label,
        "last_used_at": iso(n.last_used_at),
        "created_at": iso(n.created_at),
        "updated_at": iso(n.updated_at),
    }


def trunk_json(t: Trunk) -> JsonObject:
    return {
        "name": t.name,
        "endpoint": t.pbx_endpoint,
        "codec": t.codec,
        "description": t.description,
        "pbx": t.pbx or None,
    }


def api_key_json(key: ApiKey) -> JsonObject:
    """A key as listed: never its secret nor its hash."""
    return {
        "id": key.id,
        "name": key.name,
        "scope": key.scope.value,
        "created_at": iso(key.created_at),
        "revoked_at": iso(key.revoked_at),
    }
