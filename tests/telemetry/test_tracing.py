"""[telemetry]: the settings and their refusals, nothing made while off, the exporter each
setting picks, and a call's spans (its turns, tool calls, transitions) in the SDK's in-memory
exporter: their tree, their times, and no transcript or number unless the operator opts in."""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from telemetry.otlp_receiver import OtlpReceiver
from voicedock.calls.call_traces import CallTraces
from voicedock.config import ConfigError, TelemetrySettings, load_settings
from voicedock.domain.records import Call, CallEvent, CallStatus, Direction
from voicedock.pipeline.dialogue.events import CallEvents, HandedOver, ToolCalled, TurnTimed
from voicedock.pipeline.frames import TurnLatency
from voicedock.pipeline.pools.provider_health import Endpoint
from voicedock.telemetry.trace_context import headers_of, parent_from
from voicedock.telemetry.tracing import Tracing, exporter_for
from voicedock.webhooks.worker import DeliveryWorker

pytestmark = pytest.mark.unit

REMOTE, OURS = "+31612345678", "+31201234567"
HEARD = "I would like to book an appointment on Monday."
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def settings(**env: str) -> TelemetrySettings:
    environ = {f"VOICEDOCK_TELEMETRY__{k.upper()}": v for k, v in env.items()}
    return load_settings(environ=environ).telemetry


# ── settings ───────────────────────────────────────────────────────────────────────────────
def test_traces_are_off_by_default_and_read_from_the_environment() -> None:
    assert not settings().on
    on = settings(
        traces="otlp-http",
        endpoint="https://collector.example:4318",
        headers__authorization="Bearer abc",
        sample_ratio="0.25",
        record_content="true",
    )
    assert on.on
    assert on.record_content
    assert on.sample_ratio == 0.25
    assert on.headers == {"authorization": "Bearer abc"}
    assert on.url() == "https://collector.example:4318/v1/traces"
    assert settings(traces="otlp-http").url() == "http://localhost:4318/v1/traces"
    assert settings(traces="otlp-grpc").url() == "http://localhost:4317"
    custom = settings(traces="otlp-http", endpoint="http://c:4318/otlp/traces")
    assert custom.url() == "http://c:4318/otlp/traces"  # a path given is used as given


@pytest.mark.parametrize(
    ("env", "key", "problem"),
    [
        ({"traces": "zipkin"}, "telemetry.traces", "must be one of"),
        ({"endpoint": "ftp://collector"}, "telemetry.endpoint", "http:// or https://"),
        ({"endpoint": "http://user:pw@c:4318"}, "telemetry.endpoint", "credentials"),
        ({"traces": "otlp-grpc", "endpoint": "http://c:4317/v1"}, "telemetry.endpoint", "no path"),
        ({"sample_ratio": "1.5"}, "telemetry.sample_ratio", "between 0 and 1"),
        ({"timeout_seconds": "0"}, "telemetry.timeout_seconds", "between 1 and 60"),
        ({"service_name": "my service"}, "telemetry.service_name", "letters"),
        ({"headers__x-key": "a\nb"}, "telemetry.headers.x-key", "line breaks"),
        ({"colour": "blue"}, "telemetry.colour", "unknown key"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(
    env: dict[str, str], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        settings(**env)
    assert refused.value.key == key
    assert problem in str(refused.value)


def test_a_bad_header_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a valid HTTP header name"):
        TelemetrySettings(traces="otlp-http", headers={"bad name": "x"}).check()


# ── off: nothing at all ────────────────────────────────────────────────────────────────────
def test_off_makes_no_tracer_and_never_loads_the_sdk() -> None:
    probe = (
        "import sys\n"
        "from voicedock.config import TelemetrySettings\n"
        "from voicedock.telemetry.tracing import Tracing\n"
        "import voicedock.service, voicedock.api.app\n"
        "assert Tracing.of(TelemetrySettings(), 'n').tracer is None\n"
        "print(' '.join(m for m in sys.modules if m.startswith('opentelemetry.sdk')"
        " or m.startswith('opentelemetry.exporter')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == []


async def test_a_service_with_traces_off_has_no_call_traces(tmp_path: object) -> None:
    from fakes.world import make_settings
    from voicedock.service import Service

    service = await Service.open(make_settings(f"sqlite:///{tmp_path}/t.db"))
    try:
        assert service.tracing.tracer is None
        assert service.call_traces is None
        assert service.webhooks.worker.trace_headers is None
    finally:
        await service.aclose()


# ── the exporter each setting picks ────────────────────────────────────────────────────────
def test_otlp_grpc_picks_the_grpc_exporter() -> None:
    grpc = exporter_for(settings(traces="otlp-grpc", endpoint="http://collector:4317"))
    assert isinstance(grpc, GrpcExporter)
    assert grpc._endpoint == "collector:4317"
    grpc.shutdown()


async def test_otlp_http_exports_to_the_endpoint_with_the_operators_headers() -> None:
    async with OtlpReceiver() as receiver:
        chosen = settings(
            traces="otlp-http", endpoint=receiver.url, headers__authorization="Bearer k"
        )
        http = exporter_for(chosen)
        assert isinstance(http, HttpExporter)
        http.shutdown()
        tracing = Tracing.of(chosen, "node-1")
        assert tracing.tracer is not None
        tracing.tracer.start_span("probe").end()
        await tracing.aclose()  # flushes
        span = await receiver.wait_for("probe")
    assert receiver.headers[0]["authorization"] == "Bearer k"
    assert span.resource["service.name"] == "voicedock"
    assert span.resource["service.instance.id"] == "node-1"


async def test_a_tracer_on_closes_once() -> None:
    tracing = Tracing.of(settings(traces="otlp-grpc"), "node-1")
    assert tracing.tracer is not None
    await tracing.aclose()
    await tracing.aclose()
    assert tracing.tracer is None


# ── a call's spans ─────────────────────────────────────────────────────────────────────────
def traced(record_content: bool = False) -> tuple[Tracing, CallTraces, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing = Tracing.of(TelemetrySettings(record_content=record_content), "node-1", exporter)
    assert tracing.tracer is not None
    return tracing, CallTraces(tracing, tracing.tracer), exporter


def a_call(created: datetime) -> Call:
    return Call(
        id="call_f00dfeedbeefcafe",
        organization_id="org_acme",
        direction=Direction.OUTBOUND,
        status=CallStatus.CONNECTING,
        caller_phone=REMOTE,
        assistant_phone=OURS,
        assistant_id="asst_1",
        assistant_version=3,
        created_at=created,
    )


def turn(decided: float) -> TurnTimed:
    latency = TurnLatency(
        endpointing_ms=600.0,
        stt_final_ms=180.0,
        llm_first_token_ms=420.0,
        tts_first_audio_ms=610.0,
        first_frame_sent_ms=640.0,
        retrieval_ms=40.0,
    )
    llm = Endpoint("llm", "openai", "http://127.0.0.1:9999/v1", "gpt-4o-mini")
    stt = Endpoint("stt", "faster_whisper", "", "base")
    return TurnTimed(latency, decided, stt, llm, Endpoint("tts", "piper"), HEARD)


async def run_call(call_traces: CallTraces, tracing: Tracing) -> tuple[Call, float]:
    """A call created inside a request's span, answered, two turns and a tool call, ended."""
    created = datetime.now(UTC) - timedelta(seconds=30)
    call = a_call(created)
    assert tracing.tracer is not None
    request = parent_from({"traceparent": PARENT})
    with tracing.tracer.start_as_current_span("POST /calls/outbound", context=request):
        placed = CallEvent(call.id, "status", {"to": "connecting"}, created)
        await call_traces.on_event(None, call, placed)
    answered = created + timedelta(seconds=2)
    moved = {"from": "connecting", "to": "in-progress"}
    await call_traces.on_event(None, call, CallEvent(call.id, "status", moved, answered))
    decided = answered.timestamp() + 5
    async with CallEvents() as events:
        call_traces.watch(call, events)
        events.emit(turn(decided))
        events.emit(ToolCalled("lookup_booking", failed=True, ms=250.0))
        events.emit(HandedOver("Ada", "Billing", reason="the caller asked about " + HEARD))
        events.emit(turn(decided + 10))
    call.status, call.end_reason = CallStatus.ENDED, "assistant-ended"
    call.ended_at = answered + timedelta(seconds=25)
    call.latency = [{}, {}]
    await call_traces.on_report(None, call, [])
    return call, decided


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def attribute_values(spans: tuple[ReadableSpan, ...]) -> list[str]:
    found = [str(v) for s in spans for v in (s.attributes or {}).values()]
    found += [str(v) for s in spans for e in s.events for v in (e.attributes or {}).values()]
    return found


async def test_a_call_is_one_trace_under_its_request_with_a_span_per_turn() -> None:
    tracing, call_traces, exporter = traced()
    call, decided = await run_call(call_traces, tracing)
    spans = exporter.get_finished_spans()
    (request,) = by_name(spans, "POST /calls/outbound")
    (call_span,) = by_name(spans, "call outbound")
    assert {s.context.trace_id for s in spans} == {int(PARENT.split("-")[1], 16)}
    assert call_span.parent is not None
    assert call_span.parent.span_id == request.context.span_id
    assert call_span.start_time == int(call.created_at.timestamp() * 1e9)
    assert call_span.end_time == int(call.ended_at.timestamp() * 1e9)
    attributes = call_span.attributes or {}
    assert attributes["voicedock.call.id"] == call.id
    assert attributes["voicedock.call.status"] == "ended"
    assert attributes["voicedock.assistant.version"] == 3
    assert [e.name for e in call_span.events] == ["status", "status", "handoff"]
    turns = by_name(spans, "turn")
    assert [t.attributes["voicedock.turn.index"] for t in turns] == [1, 2]
    first = turns[0]
    assert first.parent is not None
    assert first.parent.span_id == call_span.context.span_id
    assert first.start_time == int((decided - 0.6) * 1e9)
    children = {s.name: s for s in spans if s.parent and s.parent.span_id == first.context.span_id}
    assert set(children) == {"endpointing", "stt", "retrieval", "chat gpt-4o-mini", "tts"}
    order = ["endpointing", "stt", "retrieval", "chat gpt-4o-mini", "tts"]
    for name in order:
        child = children[name]
        assert first.start_time <= child.start_time <= child.end_time <= first.end_time
    for earlier, later in itertools.pairwise(order):
        assert children[earlier].end_time <= children[later].start_time
    chat = children["chat gpt-4o-mini"]
    assert chat.kind is SpanKind.CLIENT
    assert chat.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "server.address": "127.0.0.1",
        "server.port": 9999,
    }
    assert (chat.end_time - chat.start_time) / 1e6 == pytest.approx(420 - 180 - 40, abs=0.01)
    (tool,) = by_name(spans, "execute_tool lookup_booking")
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "lookup_booking",
    }
    # Nothing said, no number, anywhere.
    for value in attribute_values(spans):
        assert "appointment" not in value
        assert REMOTE[4:] not in value
        assert OURS[4:] not in value


async def test_content_is_recorded_only_when_the_operator_opts_in_numbers_masked() -> None:
    tracing, call_traces, exporter = traced(record_content=True)
    await run_call(call_traces, tracing)
    spans = exporter.get_finished_spans()
    (call_span,) = by_name(spans, "call outbound")
    assert call_span.attributes["voicedock.call.remote_number"] == "+316***78"
    assert by_name(spans, "turn")[0].attributes["voicedock.turn.heard"] == HEARD
    values = attribute_values(spans)
    assert not [v for v in values if REMOTE in v or OURS in v]


async def test_a_rolled_back_creation_is_never_exported_and_a_report_ends_a_span_once() -> None:
    from voicedock.calls.engine.attempts import attempt

    _, call_traces, exporter = traced()
    call = a_call(datetime.now(UTC))

    async def rolled_back() -> None:
        async with attempt(_Store()):
            placed = CallEvent(call.id, "status", {"to": "connecting"})
            await call_traces.on_event(None, call, placed)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await rolled_back()
    assert call_traces.headers_for(call.id) == {}
    call.status = CallStatus.FAILED
    call.end_reason = "pbx-unavailable"
    await call_traces.on_report(None, call, [])
    await call_traces.on_report(None, call, [])  # a retried report
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert call_traces.headers_for(call.id)["traceparent"].split("-")[1] == format(
        span.context.trace_id, "032x"
    )


class _Store:
    """Only what ``attempt`` asks of a store: a transaction."""

    @contextlib.asynccontextmanager
    async def transaction(self, brief: bool = False) -> AsyncIterator[None]:
        yield None


def test_a_webhook_about_a_call_names_its_span() -> None:
    traceparent = {"traceparent": PARENT}
    asked: list[str] = []

    def headers(call_id: str) -> dict[str, str]:
        asked.append(call_id)
        return traceparent

    about = DeliveryWorker._trace_context(headers, b'{"type":"status-update","call_id":"call_1"}')
    assert about == traceparent
    assert asked == ["call_1"]
    assert DeliveryWorker._trace_context(headers, b'{"type":"campaign.completed"}') == {}
    assert DeliveryWorker._trace_context(headers, b"not json") == {}


def test_trace_context_round_trips_and_ignores_garbage() -> None:
    from opentelemetry.trace import get_current_span

    parent = parent_from({"Traceparent": PARENT})
    assert parent is not None
    context = get_current_span(parent).get_span_context()
    assert headers_of(context) == {"traceparent": PARENT}
    assert parent_from({}) is None
    assert not get_current_span(parent_from({"traceparent": "00-zz"})).get_span_context().is_valid
