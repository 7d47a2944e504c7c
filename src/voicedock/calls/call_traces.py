"""A trace per call (``[telemetry]`` on): its span from its creation to its end, its
transitions, and under it each answered turn (``turn_spans.py``) and each of the model's tool
calls.

``CallTraces`` is a ``CallObserver`` beside the webhooks and the metrics, and a ``CallWatcher``
of the runner:

* the call's first event (its creation) starts its span, ``call outbound`` or ``call inbound``,
  at the call's ``created_at``: inside ``POST /calls/outbound`` the request's span is current
  (``api/request_traces.py``), so the call's trace is the request's (and the client's, when it
  sent a ``traceparent``); a transaction that does not commit drops it unexported;
* each transition, transfer outcome and command is an event of that span (a command by its
  type only: what it says is content);
* the served call's events (``pipeline/dialogue/events.py``): each answered turn's spans
  (``TurnTimed``), each tool call an ``execute_tool <name>`` span, each handoff and provider
  switch an event;
* the call's report (``on_report``) ends the span at the call's ``ended_at`` with its outcome.

A call this node did not create (another node placed it, or a restart) gets its span when it
is first seen here, as a trace of its own. The webhooks about a call carry its span's
``traceparent`` (``headers_for``), while it lasts and for the last ``RECENT`` calls after.
Test suites' test calls are left out, as the metrics leave them out. Attributes hold ids,
names, statuses and times; no transcript, argument or number unless the operator records
content (``telemetry/tracing.py``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from opentelemetry.context import Context
from opentelemetry.trace import (
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    set_span_in_context,
)
from opentelemetry.util.types import AttributeValue

from voicedock.calls.engine.attempts import on_failure
from voicedock.calls.turn_spans import TurnSpans
from voicedock.domain.records import Call, CallEvent, CallMessage, CallStatus, utcnow
from voicedock.store.base import Transaction
from voicedock.telemetry.trace_context import headers_of
from voicedock.telemetry.tracing import Tracing, present

if TYPE_CHECKING:  # the audio pipeline is imported when the first call is answered
    from voicedock.pipeline.dialogue.events import CallEvent as LiveEvent
    from voicedock.pipeline.dialogue.events import CallEvents

RECENT = 4096  # ended calls whose span a late webhook still names


def _ns(at: datetime | float) -> int:
    seconds = at.timestamp() if isinstance(at, datetime) else at
    return int(seconds * 1_000_000_000)


class CallTraces:
    """The node's call spans, by call id."""

    def __init__(self, tracing: Tracing, tracer: Tracer) -> None:
        self._tracing, self._tracer = tracing, tracer
        self._open: dict[str, Span] = {}
        self._recent: OrderedDict[str, SpanContext] = OrderedDict()

    # ── the engine's observer ───────────────────────────────────────────────────────────
    async def on_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        if call.test_run_id is not None:
            return
        span = self._open.get(call.id)
        if span is None:
            if call.id in self._recent:
                return  # ended here already: a late event
            creation = event.type == "status" and "from" not in event.data
            span = self._start(call, inherit=creation)
            on_failure(lambda: self._forget(call.id))  # never exported
        at = _ns(event.created_at)
        data = event.data
        if event.type == "status":
            span.add_event("status", {"voicedock.call.status": str(data.get("to", ""))}, at)
        elif event.type == "transfer":
            span.add_event("transfer", {"voicedock.transfer.result": str(data.get("result"))}, at)
        elif event.type == "control" and isinstance(kind := data.get("type"), str):
            span.add_event("control", {"voicedock.control.type": kind}, at)

    async def on_report(self, tx: Transaction, call: Call, messages: Sequence[CallMessage]) -> None:
        if call.test_run_id is not None:
            return
        span = self._open.pop(call.id, None)
        if span is None:
            if call.id in self._recent:
                return  # ended here already (a retried report)
            span = self._start(call, inherit=False)
            self._open.pop(call.id, None)
        outcome: dict[str, AttributeValue] = {
            "voicedock.call.status": call.status.value,
            "voicedock.call.end_reason": call.end_reason or "",
            "voicedock.call.turns": len(call.latency),
        }
        if call.duration_seconds is not None:
            outcome["voicedock.call.duration_s"] = call.duration_seconds
        if call.transferred_at is not None:
            outcome["voicedock.call.transferred"] = True
        span.set_attributes(outcome)
        if call.status is CallStatus.FAILED:
            span.set_status(Status(StatusCode.ERROR, call.end_reason or "failed"))
        span.end(end_time=_ns(call.ended_at or utcnow()))

    # ── the runner's watcher ────────────────────────────────────────────────────────────
    def watch(self, call: Call, events: CallEvents) -> None:
        """Trace what the served ``call`` tells: its turns, tool calls, handoffs and provider
        switches (a listener: its own task, off the audio path)."""
        if call.test_run_id is not None:
            return
        from voicedock.pipeline.dialogue.events import (
            HandedOver,
            ProviderSwitched,
            ToolCalled,
            TurnTimed,
        )

        span = self._open.get(call.id) or self._start(call, inherit=False)
        parent = set_span_in_context(span, Context())
        turns = TurnSpans(self._tracing, self._tracer, parent)

        async def told(event: LiveEvent) -> None:
            if isinstance(event, TurnTimed):
                turns.add(event)
            elif isinstance(event, ToolCalled):
                self._tool_call(parent, event.name, event.failed, event.ms)
            elif isinstance(event, HandedOver):
                handed: dict[str, AttributeValue] = {
                    "voicedock.handoff.from": event.source,
                    "voicedock.handoff.to": event.to,
                }
                if (reason := self._tracing.words(event.reason)) is not None:
                    handed["voicedock.handoff.reason"] = reason
                span.add_event("handoff", handed)
            elif isinstance(event, ProviderSwitched):
                switch = event.switch
                moved: dict[str, AttributeValue] = {
                    "voicedock.switch.engine": switch.kind,
                    "voicedock.switch.from": switch.source.label(),
                    "voicedock.switch.reason": switch.reason,
                }
                if switch.to is not None:
                    moved["voicedock.switch.to"] = switch.to.label()
                span.add_event("provider_switch", moved)

        events.listen(told, TurnTimed, ToolCalled, HandedOver, ProviderSwitched)

    # ── what the webhooks and the service ask ───────────────────────────────────────────
    def headers_for(self, call_id: str) -> dict[str, str]:
        """The ``traceparent`` naming the call's span (nothing: no span of it here)."""
        span = self._open.get(call_id)
        context = span.get_span_context() if span is not None else self._recent.get(call_id)
        return {} if context is None else headers_of(context)

    def close(self) -> None:
        """The node stops: the spans of the calls still open here end now, so they are
        exported (each marked ``voicedock.call.open_at_stop``)."""
        for span in self._open.values():
            span.set_attribute("voicedock.call.open_at_stop", True)
            span.end()
        self._open.clear()

    # ── its parts ───────────────────────────────────────────────────────────────────────
    def _start(self, call: Call, *, inherit: bool) -> Span:
        """The call's span, from its creation; ``inherit``: a child of the current span (the
        request that creates it), else a trace of its own."""
        attributes: dict[str, AttributeValue] = {
            "voicedock.call.id": call.id,
            "voicedock.call.direction": call.direction.value,
            "voicedock.organization.id": call.organization_id,
        }
        attributes |= present(
            (
                ("voicedock.assistant.id", call.assistant_id),
                ("voicedock.assistant.version", call.assistant_version),
                ("voicedock.pbx", call.pbx),
                ("voicedock.trunk", call.trunk),
                ("voicedock.campaign.id", call.campaign_id),
                ("voicedock.call.remote_number", self._tracing.number(call.caller_phone)),
                ("voicedock.call.assistant_number", self._tracing.number(call.assistant_phone)),
            )
        )
        span = self._tracer.start_span(
            f"call {call.direction.value}",
            context=None if inherit else Context(),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(call.created_at),
        )
        self._open[call.id] = span
        self._remember(call.id, span.get_span_context())
        return span

    def _forget(self, call_id: str) -> None:
        self._open.pop(call_id, None)
        self._recent.pop(call_id, None)

    def _remember(self, call_id: str, context: SpanContext) -> None:
        self._recent[call_id] = context
        self._recent.move_to_end(call_id)
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)

    def _tool_call(self, parent: Context, name: str, failed: bool, ms: float) -> None:
        """One of the model's tool calls, ended now after ``ms`` (GenAI's ``execute_tool``)."""
        end = utcnow().timestamp()
        span = self._tracer.start_span(
            f"execute_tool {name}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name},
            start_time=_ns(end - ms / 1000),
        )
        if failed:
            span.set_status(Status(StatusCode.ERROR, "the tool call failed"))
        span.end(end_time=_ns(end))
