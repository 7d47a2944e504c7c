"""Prometheus metrics of one service, in a registry of its own (never the global one).

Most values are read when Prometheus scrapes (``render``): stored calls by status and end
reason and the active ones per trunk, PBX and node, webhook deliveries and the outbox depth
(from the database, so every node reports the whole cluster's); the PBX links and their
reconnects, and the outbound media counters of this node. What happens once per call or turn
is counted by ``observer``, a ``CallObserver`` beside the webhooks: originate -> answer time,
each turn's STT / LLM / TTS latency per provider (from the call's stored latency record),
calls ended here. What a live call tells as it runs (``pipeline/dialogue/events.py``) is
counted by ``live`` (``LiveCounts``), which the runner hands each served call's events: the
caller's turns, barge-ins, early cut-offs (the caller went on within a second of being
judged finished: ``pipeline/dialogue/cut_offs.py``), the model's tool calls and how long they
took. The offline
recognizer's pool and the calls admission control refused (``calls/speech_admission.py``) are read
from this node's runner; the speech providers' counts and breakers from its ``ProviderHealth``;
the free space of the recordings' file system from the disk.

Test suites' test calls are left out of the calls counted and of what is counted per call (as
they are of ``GET /calls`` and ``/usage``); the active calls include them (they hold the PBX's
channels and the node's speech).

Labels carry ids, names and reasons from bounded sets (statuses, end reasons, provider,
trunk, PBX and node names); never a phone number.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from msgspec import UnsetType
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from voicedock.calls.listening import Listening
from voicedock.calls.speech_admission import KINDS, SPEECH_CAPACITY, SpeechAdmission
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import AssistantConfig, Section
from voicedock.domain.records import Call, CallEvent, CallMessage, Direction, PhoneNumber, utcnow
from voicedock.media.output_totals import OutputTotals
from voicedock.pbx.base import Pbx, PbxHealth
from voicedock.pipeline.pools.provider_health import ProviderHealth
from voicedock.pipeline.pools.worker_pool import Priority
from voicedock.store.base import Store, StoreCounts, Transaction

if TYPE_CHECKING:  # the audio pipeline is imported when the first call is answered
    from voicedock.pipeline.dialogue.events import (
        CallerCutOff,
        CallEvents,
        ReplyInterrupted,
        ToolCalled,
        TurnCommitted,
    )

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_ANSWER_BUCKETS = (1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 45.0, 60.0, 90.0)
_TURN_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_TOOL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class MetricsSources:
    """What the metrics read at scrape time: the store's counts, the PBX's health, the calls'
    outbound media, the speech settings (default providers), the offline speech admission,
    live listen and the speech providers' health (each ``None``: not exposed), and the
    recordings' directory (``[recordings] directory``; "": not exposed)."""

    store: Store
    pbx: Pbx
    media: OutputTotals
    speech: SpeechSettings
    admission: SpeechAdmission | None = None
    listening: Listening | None = None
    provider_health: ProviderHealth | None = None
    recordings_directory: str = ""


class ServiceMetrics:
    def __init__(self, sources: MetricsSources) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Whether this node drains now (calls/nodes/drain.py): the service tells it once its
        # node exists.
        self.draining: Callable[[], bool] = lambda: False
        self._sources = sources
        self._counts = StoreCounts({}, {}, {})
        r = self.registry
        self.answer_seconds = Histogram(
            "voicedock_originate_answer_seconds",
            "Time from placing an outbound call to its answer.",
            ["pbx"],
            buckets=_ANSWER_BUCKETS,
            registry=r,
        )
        self.calls_ended = Counter(
            "voicedock_calls_ended",
            "Calls that ended on this node, by direction, status and end reason.",
            ["direction", "status", "end_reason"],
            registry=r,
        )
        self.live = LiveCounts(r)
        self.turn_latency = _turn_latency(r)
        r.register(_ScrapeCollector(self))
        self.observer = MetricsObserver(self)

    async def render(self) -> bytes:
        """The text exposition of every metric (reads the database first)."""
        self._counts = await self._sources.store.metrics_counts()
        return generate_latest(self.registry)

    # -- what the per-call observer records ----------------------------------------------------

    def providers(self, config: AssistantConfig) -> dict[str, str]:
        """The STT, LLM and TTS provider names a call's assistant configuration resolves to."""

        def named(section: Section | UnsetType, default: str) -> str:
            name = None if isinstance(section, UnsetType) else section.get("provider")
            return name if isinstance(name, str) else default

        top = config.provider
        llm_default = top if isinstance(top, str) and top != "offline" else self._sources.speech.llm
        return {
            "stt": named(config.stt_config, self._sources.speech.stt),
            "llm": named(config.llm_config, llm_default),
            "tts": named(config.tts_config, self._sources.speech.tts),
        }

    def observe_turns(self, call: Call) -> None:
        names = self.providers(call.assistant_config)
        for turn in call.latency:
            stt = _seconds(turn.get("stt_final_ms"))
            llm = _seconds(turn.get("llm_first_token_ms"))
            tts = _seconds(turn.get("tts_first_audio_ms"))
            # Each is measured from the end-of-turn decision: the stage is the difference.
            if stt is not None:
                self.turn_latency["stt"].labels(names["stt"]).observe(stt)
            if llm is not None and stt is not None and llm >= stt:
                self.turn_latency["llm"].labels(names["llm"]).observe(llm - stt)
            if tts is not None and llm is not None and tts >= llm:
                self.turn_latency["tts"].labels(names["tts"]).observe(tts - llm)

    # -- what is read at scrape time ----------------------------------------------------------

    def scrape(self) -> Iterator[Metric]:
        counts = self._counts
        yield _gauge(
            "voicedock_calls",
            "Stored calls (every node's), by direction, status and end reason.",
            ["direction", "status", "end_reason"],
            counts.calls,
        )
        yield _gauge(
            "voicedock_active_calls",
            "Calls not yet ended, by trunk, PBX server and the node serving them.",
            ["trunk", "pbx", "node"],
            counts.active_calls,
        )
        deliveries = GaugeMetricFamily(
            "voicedock_webhook_deliveries",
            "Webhook deliveries in the outbox, by state (pending, delivered, failed).",
            labels=["state"],
        )
        for state in ("pending", "delivered", "failed"):
            deliveries.add_metric([state], counts.webhook_deliveries.get(state, 0))
        yield deliveries
        yield GaugeMetricFamily(
            "voicedock_webhook_outbox_depth",
            "Webhook deliveries waiting to be sent (or retried).",
            value=counts.webhook_deliveries.get("pending", 0),
        )
        yield GaugeMetricFamily(
            "voicedock_node_draining",
            "1 while this node drains (SIGTERM, voicedock nodes drain): it takes no new call "
            "and stops once its calls have ended.",
            value=1.0 if self.draining() else 0.0,
        )
        yield from _number_metrics(counts.numbers, utcnow())
        yield from _pbx_metrics(self._sources.pbx.health())
        yield from self._media_metrics()
        if self._sources.admission is not None:
            yield from _recognition_metrics(self._sources.admission)
        if self._sources.listening is not None:
            yield from _listen_metrics(self._sources.listening)
        if self._sources.provider_health is not None:
            yield from _provider_metrics(self._sources.provider_health)
        if self._sources.recordings_directory:
            yield from _recordings_disk_metrics(Path(self._sources.recordings_directory))

    def _media_metrics(self) -> Iterator[Metric]:
        media = self._sources.media.snapshot()
        for name, help_text, value in (
            ("frames_sent", "Outbound media frames sent to the PBX (speech and silence).",
             media.frames_sent),
            ("lateness_seconds", "Time outbound frames were written past their due time on "
             "the 20 ms clock, summed (frames written ahead count 0).", media.lateness_seconds),
            ("frames_dropped", "Queued outbound frames dropped unsent at barge-in.",
             media.frames_cleared),
            ("underruns", "Ticks where speech being played had no frame ready (slow TTS).",
             media.underruns),
            ("schedule_resets", "Times the 20 ms clock fell so far behind that missed ticks "
             "were skipped.", media.schedule_resets),
        ):  # fmt: skip
            family = CounterMetricFamily(f"voicedock_media_output_{name}", help_text)
            family.add_metric([], value)
            yield family


def _listen_metrics(listening: Listening) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "voicedock_listeners",
        "Live listeners of this node's calls (GET /calls/{id}/listen).",
        value=listening.listeners,
    )
    dropped = CounterMetricFamily(
        "voicedock_listen_frames_dropped",
        "Audio frames dropped because a live listener fell behind (the call never waits).",
    )
    dropped.add_metric([], listening.frames_dropped)
    yield dropped


def _provider_metrics(health: ProviderHealth) -> Iterator[Metric]:
    totals = health.totals()
    for name, help_text in (
        ("requests", "Requests this node's calls sent to speech providers, by engine and "
         "provider."),
        ("failures", "Requests that failed (an error, a timeout, a stream that stopped)."),
        ("switches", "Turns that moved on from a provider to the next entry of their "
         "fallback plan."),
    ):  # fmt: skip
        family = CounterMetricFamily(
            f"voicedock_provider_{name}", help_text, labels=["engine", "provider"]
        )
        for (engine, provider), counts in sorted(totals.items()):
            family.add_metric([engine, provider], getattr(counts, name))
        yield family
    opened = GaugeMetricFamily(
        "voicedock_provider_breakers_open",
        "Provider endpoints this node's calls skip now (breaker open or probing), by engine "
        "and provider.",
        labels=["engine", "provider"],
    )
    open_now = health.open_now()
    # Every provider this node's calls used: 0 while none of its breakers is open.
    for engine, provider in sorted(open_now.keys() | totals.keys()):
        opened.add_metric([engine, provider], open_now.get((engine, provider), 0))
    yield opened


def _recordings_disk_metrics(directory: Path) -> Iterator[Metric]:
    """The free space of the file system the recordings are written to (the directory, or
    its nearest existing parent before the first recording makes it)."""
    where = directory.absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        usage = shutil.disk_usage(where)
    except OSError:  # unreadable: no value rather than a failed scrape
        return
    yield GaugeMetricFamily(
        "voicedock_recordings_disk_free_bytes",
        "Free space of the file system holding [recordings] directory, in bytes.",
        value=usage.free,
    )
    yield GaugeMetricFamily(
        "voicedock_recordings_disk_free_ratio",
        "Free space of the file system holding [recordings] directory, of its size (0-1).",
        value=usage.free / usage.total if usage.total else 0.0,
    )


def _recognition_metrics(admission: SpeechAdmission) -> Iterator[Metric]:
    pool = admission.recognition.pool
    yield GaugeMetricFamily(
        "voicedock_speech_recognition_wait_seconds",
        "How long transcriptions wait for an offline recognizer now (the oldest waiting, or the "
        "longest wait of the last seconds); over [speech] admission_wait_ms new calls are "
        "refused.",
        value=admission.recognition.wait_s(),
    )
    yield GaugeMetricFamily(
        "voicedock_speech_recognition_waiting",
        "Transcriptions waiting for a worker of the node's recognition pool.",
        value=pool.waiting,
    )
    yield GaugeMetricFamily(
        "voicedock_speech_recognition_workers",
        "Transcriptions the node's recognition pool runs at once.",
        value=pool.workers,
    )
    started = CounterMetricFamily(
        "voicedock_speech_recognition_jobs",
        "Transcriptions started by the recognition pool, by kind (final: a caller waits; "
        "ahead: an interim or speculative final).",
        labels=["kind"],
    )
    started.add_metric(["final"], pool.started[Priority.DUE])
    started.add_metric(["ahead"], pool.started[Priority.AHEAD])
    yield started
    refused = CounterMetricFamily(
        "voicedock_calls_refused",
        "New calls this node refused, by reason and kind (outbound: POST /calls/outbound "
        "answered 503; campaign: a contact left waiting; inbound: rejected at the PBX).",
        labels=["reason", "kind"],
    )
    for kind in KINDS:
        refused.add_metric([SPEECH_CAPACITY, kind], admission.refused[kind])
    yield refused


def _gauge(
    name: str, help_text: str, labels: list[str], values: Mapping[tuple[str, str, str], int]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for label_values, n in sorted(values.items()):
        family.add_metric(list(label_values), n)
    return family


def _turn_latency(registry: CollectorRegistry) -> dict[str, Histogram]:
    """Per turn, by provider: how long recognition, the LLM and synthesis each took."""
    return {
        stage: Histogram(
            f"voicedock_{stage}_latency_seconds",
            help_text,
            ["provider"],
            buckets=_TURN_BUCKETS,
            registry=registry,
        )
        for stage, help_text in (
            ("stt", "Per turn: from the end of the caller's speech to the final transcript."),
            ("llm", "Per turn: from the final transcript to the LLM's first token."),
            ("tts", "Per turn: from the LLM's first token to the first synthesized audio."),
        )
    }


def _number_metrics(numbers: list[PhoneNumber], now: datetime) -> Iterator[Metric]:
    """Each caller number's health (``calls/outbound/number_health.py``), labelled by its
    organization and id (never the number itself): its window's rates where it has calls,
    whether it is flagged and whether it rests."""
    labels = ["organization", "number_id"]
    rates = {
        name: GaugeMetricFamily(f"voicedock_number_{name}", help_text, labels=labels)
        for name, help_text in (
            ("calls", "Outbound calls made from the number in its health window that the "
             "callee's side decided (answered, busy, no-answer, rejected)."),
            ("answer_rate", "Answered of those calls, 0-1."),
            ("short_call_rate", "Answered calls over within [number_health] "
             "short_call_seconds, of those answered, 0-1."),
            ("voicemail_rate", "Answered calls taken by a machine, of those answered, 0-1."),
        )
    }  # fmt: skip
    flagged = GaugeMetricFamily(
        "voicedock_number_flagged",
        "1 while the number is flagged unhealthy (its answer rate under the operator's floor).",
        labels=labels,
    )
    resting = GaugeMetricFamily(
        "voicedock_number_resting",
        "1 while the number rests (no call made from it unless named).",
        labels=labels,
    )
    for number in numbers:
        key = [number.organization_id, number.id]
        flagged.add_metric(key, 0.0 if number.flagged_at is None else 1.0)
        rest = number.resting_until
        resting.add_metric(key, 1.0 if rest is not None and rest > now else 0.0)
        if number.health is None:
            continue
        o = number.health.outcomes
        rates["calls"].add_metric(key, o.calls)
        for name, rate in (
            ("answer_rate", o.answer_rate()),
            ("short_call_rate", o.short_call_rate()),
            ("voicemail_rate", o.voicemail_rate()),
        ):
            if rate is not None:
                rates[name].add_metric(key, rate)
    yield from rates.values()
    yield flagged
    yield resting


def _pbx_metrics(health: PbxHealth) -> Iterator[Metric]:
    servers: Mapping[str, PbxHealth] = health.servers or {"": health}
    up = GaugeMetricFamily(
        "voicedock_pbx_link_up",
        "1 when this node's connection to the PBX is up (per server and link: ari, ami, esl).",
        labels=["pbx", "link"],
    )
    reconnects = CounterMetricFamily(
        "voicedock_pbx_reconnects",
        "Connections to the PBX made again after the first, since start.",
        labels=["pbx", "link"],
    )
    can_place = GaugeMetricFamily(
        "voicedock_pbx_can_place_calls",
        "1 when the PBX server can place calls now.",
        labels=["pbx"],
    )
    for name, server in sorted(servers.items()):
        for link, is_up in sorted(server.links.items()):
            up.add_metric([name, link], 1.0 if is_up else 0.0)
        for link, n in sorted(server.reconnects.items()):
            reconnects.add_metric([name, link], n)
        if server.kind != "none":
            can_place.add_metric([name], 1.0 if server.can_place_calls else 0.0)
    yield up
    yield reconnects
    yield can_place


def _seconds(ms: object) -> float | None:
    if isinstance(ms, int | float) and not isinstance(ms, bool) and ms >= 0:
        return float(ms) / 1000.0
    return None


class _ScrapeCollector(Collector):
    def __init__(self, metrics: ServiceMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.scrape()


class LiveCounts:
    """What a live call tells as it runs, counted: the runner's ``CallWatcher`` (``watch``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.barge_ins = Counter(
            "voicedock_barge_ins",
            "Assistant utterances cut short by the caller (barge-in).",
            registry=registry,
        )
        self.caller_turns = Counter(
            "voicedock_caller_turns",
            "Callers' turns given to the model (words, keypad entries or both).",
            registry=registry,
        )
        self.early_cut_offs = Counter(
            "voicedock_early_cut_offs",
            "Callers judged finished who went on speaking within a second (an early "
            "cut-off: endpointing ended their turn too soon).",
            registry=registry,
        )
        self.tool_calls = Counter(
            "voicedock_tool_calls",
            "The model's tool calls carried out, by outcome (ok, failed).",
            ["outcome"],
            registry=registry,
        )
        self.tool_seconds = Histogram(
            "voicedock_tool_call_seconds",
            "How long each of the model's tool calls took.",
            buckets=_TOOL_BUCKETS,
            registry=registry,
        )

    def watch(self, call: Call, events: CallEvents) -> None:
        """Count what ``call`` tells as it runs; a suite's test call is left out."""
        if call.test_run_id is not None:
            return
        from voicedock.pipeline.dialogue.events import (
            CallerCutOff,
            ReplyInterrupted,
            ToolCalled,
            TurnCommitted,
        )

        events.subscribe(TurnCommitted, self._turn_committed)
        events.subscribe(CallerCutOff, self._cut_off)
        events.subscribe(ReplyInterrupted, self._reply_interrupted)
        events.subscribe(ToolCalled, self._tool_called)

    def _turn_committed(self, _turn: TurnCommitted) -> None:
        self.caller_turns.inc()

    def _cut_off(self, _cut: CallerCutOff) -> None:
        self.early_cut_offs.inc()

    def _reply_interrupted(self, cut: ReplyInterrupted) -> None:
        self.barge_ins.inc(cut.messages)

    def _tool_called(self, called: ToolCalled) -> None:
        self.tool_calls.labels("failed" if called.failed else "ok").inc()
        self.tool_seconds.observe(called.ms / 1000)


class MetricsObserver:
    """The ``CallObserver`` that counts once-per-call and once-per-turn events."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._m = metrics

    async def on_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        if call.test_run_id is not None:
            return
        data = event.data
        answered = event.type == "status" and data.get("to") == "in-progress"
        if answered and call.direction is Direction.OUTBOUND:
            waited = (event.created_at - call.created_at).total_seconds()
            self._m.answer_seconds.labels(call.pbx or "").observe(max(waited, 0.0))

    async def on_report(self, tx: Transaction, call: Call, messages: Sequence[CallMessage]) -> None:
        if call.test_run_id is not None:
            return
        self._m.calls_ended.labels(
            call.direction.value, call.status.value, call.end_reason or ""
        ).inc()
        self._m.observe_turns(call)
