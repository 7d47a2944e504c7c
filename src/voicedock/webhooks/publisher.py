"""``WebhookPublisher``: the ``CallObserver`` that turns stored call events into webhooks.

It runs inside the engine's transaction, so each delivery row commits with the change that
caused it (``tx.enqueue``). Mapping:

    status event                        → status-update (and transfer-update "completed" when
                                          the call ended because it was transferred)
    control {type: transfer}            → transfer-update "started" (or "failed" with result)
    transfer {result: failed}           → transfer-update "failed"
    security {type: transfer-refused}   → transfer-update "refused" (destination masked)
    transcript                          → transcript (only endpoints that list it explicitly)
    answering-machine, provider-switch  → the same type
    end-of-call report                  → end-of-call-report (the final record)

Fan-out: the organization's enabled endpoints that want the event type. An endpoint bound to
the call's assistant overrides the organization-wide ones for the event types it wants.

The worker learns about new rows through ``on_enqueued`` (it only sets a wake-up flag, so
call handling never waits on delivery); a nudge that arrives before the commit is harmless,
the worker's poll interval bounds the delay.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec

from voicedock.domain.ids import mask_call_id
from voicedock.domain.json import json_object
from voicedock.domain.records import Call, CallEvent, CallMessage, CallStatus
from voicedock.domain.squads import involved_json
from voicedock.domain.usage import call_usage
from voicedock.domain.webhooks import EventType, WebhookEndpoint
from voicedock.store.base import Transaction
from voicedock.webhooks import events
from voicedock.webhooks.events import CallEventPayload
from voicedock.webhooks.outbox import enqueue_event

log = logging.getLogger("voicedock.webhooks")

TRANSFERRED = "transferred"  # the end_reason of a call the PBX transferred away
RESUMED = "resumed"  # the call event of a call that went on after a restart (calls/recovery)


def choose_endpoints(
    endpoints: Sequence[WebhookEndpoint], assistant_id: str | None, event_type: str
) -> list[WebhookEndpoint]:
    """Who receives ``event_type`` of a call by ``assistant_id`` (pure).

    ``transcript`` is opt-in: only endpoints listing it get one event per utterance.
    """
    wanting = [
        e
        for e in endpoints
        if e.wants(assistant_id, event_type)
        and (event_type != EventType.TRANSCRIPT or event_type in e.event_types)
    ]
    own = [e for e in wanting if e.assistant_id is not None]
    return own or wanting


def payloads_for_event(
    call: Call, event: CallEvent, requested: str | None = None
) -> list[CallEventPayload]:
    """The webhook payloads one stored call event stands for (pure; may be none).

    ``requested`` is the destination of the call's latest transfer command: the PBX's
    transfer outcome does not repeat it.
    """
    data = event.data
    at = event.created_at
    if event.type == "status":
        out = [
            events.status_update(
                call.id,
                str(data.get("to", call.status.value)),
                at=at,
                previous_status=_str_or_none(data.get("from")),
                end_reason=_str_or_none(data.get("end_reason")),
                error=_str_or_none(data.get("error")),
            )
        ]
        if data.get("end_reason") == TRANSFERRED and call.status is CallStatus.ENDED:
            out.append(
                events.transfer_update(
                    call.id, "completed", at=at, destination=call.transferred_to or ""
                )
            )
        return out
    if event.type == RESUMED:
        status = call.status.value
        return [events.status_update(call.id, status, at=at, previous_status=status, resumed=data)]
    if event.type == "control" and data.get("type") == "transfer":
        failed = data.get("result") == "failed"
        simulated = data.get("result") == "simulated"  # a test call's: nothing dialled
        return [
            events.transfer_update(
                call.id,
                "failed" if failed else "simulated" if simulated else "started",
                at=at,
                destination=str(data.get("destination") or requested or ""),
                mode=_str_or_none(data.get("mode")),
                error="the PBX could not carry out the transfer" if failed else None,
            )
        ]
    if event.type == "transfer":
        result = str(data.get("result", "failed"))
        return [
            events.transfer_update(
                call.id,
                result,
                at=at,
                destination=requested or call.transferred_to or "",
                error=_str_or_none(data.get("detail")) if result == "failed" else None,
            )
        ]
    if event.type == "security" and data.get("type") == "transfer-refused":
        return [
            events.transfer_update(
                call.id,
                "refused",
                at=at,
                destination=str(data.get("destination", "")),  # already masked
                mode=_str_or_none(data.get("mode")),
                error=_str_or_none(data.get("reason")),
            )
        ]
    if event.type == EventType.ANSWERING_MACHINE:
        return [
            events.answering_machine(
                call.id,
                str(data.get("result", "unknown")),
                at=at,
                evidence=json_object(data.get("evidence")) or {},
            )
        ]
    if event.type == EventType.PHONE_MENU:
        return [events.phone_menu(call.id, data, at=at)]
    if event.type == EventType.PROVIDER_SWITCH:
        to = data.get("to")
        return [
            events.provider_switch(
                call.id,
                str(data.get("engine", "")),
                str(data.get("from", "")),
                to if isinstance(to, str) else None,
                str(data.get("reason", "")),
                at=at,
            )
        ]
    if event.type == EventType.HANDOFF:
        return [
            events.handoff(
                call.id,
                str(data.get("from", "")),
                str(data.get("to", "")),
                _str_or_none(data.get("reason")),
                at=at,
            )
        ]
    if event.type == "transcript":
        return [
            events.transcript(
                call.id,
                str(data.get("role", "")),
                str(data.get("content", "")),
                at=at,
                member=_str_or_none(data.get("member")),
            )
        ]
    return []


def report_payload(
    call: Call, messages: Sequence[CallMessage], at: datetime | None
) -> CallEventPayload:
    # The record's fields as they are: the report copies what it sends. Not the assistant's
    # configuration (it may hold provider settings; never leaves), nor a deep copy of it.
    record = {
        f.name: getattr(call, f.name)
        for f in dataclasses.fields(call)
        if f.name not in ("assistant_config", "squad")
    }
    record["usage"] = call_usage(call, messages)
    record["squad_id"] = call.squad_id
    record["members"] = involved_json(call.squad, messages)
    record["cost"] = None if call.cost is None else msgspec.to_builtins(call.cost)
    for name in ("ai_disclosure", "caller_attestation"):  # typed parts, as JSON
        record[name] = msgspec.to_builtins(getattr(call, name))
    said = [{name: getattr(m, name) for name in events.MESSAGE_FIELDS} for m in messages]
    return events.end_of_call_report(record, said, at=at or call.updated_at)


class WebhookPublisher:
    """The outbox side of the call engine's observer seam."""

    def __init__(self, on_enqueued: Callable[[], None] = lambda: None) -> None:
        self._on_enqueued = on_enqueued
        # call id → destination of its latest transfer command (until the call's report)
        self._transfers: dict[str, str] = {}

    async def on_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        if event.type == "control" and event.data.get("type") == "transfer":
            destination = event.data.get("destination")
            if isinstance(destination, str):
                self._transfers[call.id] = destination
        for payload in payloads_for_event(call, event, self._transfers.get(call.id)):
            await self._publish(tx, call, payload)

    async def on_report(self, tx: Transaction, call: Call, messages: Sequence[CallMessage]) -> None:
        self._transfers.pop(call.id, None)
        await self._publish(tx, call, report_payload(call, messages, call.ended_at))

    async def _publish(self, tx: Transaction, call: Call, payload: CallEventPayload) -> None:
        event_type = str(payload["type"])
        payload = events.with_metadata(payload, call.metadata)
        # Read inside the transaction: on its own connection (a second pool connection per
        # event could run the pool dry under load), and consistent with the enqueue below.
        endpoints = await tx.list_webhook_endpoints(call.organization_id)
        chosen = choose_endpoints(endpoints, call.assistant_id, event_type)
        if not chosen:
            return
        await enqueue_event(tx, [e.id for e in chosen], payload)
        log.debug(
            "call %s: %s queued for %d endpoint(s)", mask_call_id(call.id), event_type, len(chosen)
        )
        self._on_enqueued()


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
