"""Everything a running voicedock needs, built from ``Settings``, with one start and one close.

    async with await Service.open(settings) as service:   # store, PBX adapter, engine
        ...

``Service`` is built from typed ``ServiceOptions`` (what ``Service.open`` opens and makes) and
builds the graph in order, each group of parts by a named builder, each part given what it works
with: the node's speech work, the webhooks, the campaigns, live listen, the metrics, the engine
(told of every change through its observers), the dialer, the runner, restart recovery, the
voices and the node's lease. ``Service.open`` opens and migrates the store, makes the node's
speech work and the PBX adapter chosen by ``pbx.kind``; ``start`` joins the nodes sharing the
store (``calls/nodes``: its lease; refused while this node id runs elsewhere, or on SQLite while
another node runs), mirrors the configured trunks, organizations, assistants and numbers into
it, connects the PBX adapter, ends the calls a previous run of this node left live or resumes
them (``calls/recovery``) and ends those of dead nodes. ``aclose()`` is idempotent.

The service owns the node's drain (``calls/nodes/drain.py``): ``drain.request`` (``SIGTERM``:
``api/serve.py``) or ``voicedock nodes drain`` starts it, and ``drain.finished`` says when the
node holds no call any more (or the drain timeout passed): then it is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Self

import msgspec

from voicedock.aio import Closable, Supervisor, started
from voicedock.calls.assistants.configured import check_configured_assistants
from voicedock.calls.call_traces import CallTraces
from voicedock.calls.campaigns.dialer import Dialer
from voicedock.calls.campaigns.manager import CampaignManager
from voicedock.calls.control import LiveCalls
from voicedock.calls.engine import CallEngine, EngineOptions, node_id_of
from voicedock.calls.event_streams import EventStreams
from voicedock.calls.listening import Listening, check_supervisor_extension
from voicedock.calls.nodes.drain import CallsEnding, Drain
from voicedock.calls.nodes.lease import Node
from voicedock.calls.observer import Observers
from voicedock.calls.organization_voices import Voices, local_voices
from voicedock.calls.outbound.number_health import NumberHealthWatch
from voicedock.calls.recordings import sweep_periodically
from voicedock.calls.recovery import CallRecovery
from voicedock.calls.rehearsal.awaited_calls import AwaitedCalls
from voicedock.calls.rehearsal.caller_speech import caller_ears, caller_voice
from voicedock.calls.rehearsal.models import operator_model
from voicedock.calls.rehearsal.runs import Rehearsals
from voicedock.calls.rehearsal.simulated_caller import PbxSimulatedCalls
from voicedock.calls.rehearsal.tool_mocks import MockedTools
from voicedock.calls.runner import CallRunner, RunnerOptions
from voicedock.calls.runner.call_speech import CallSpeech
from voicedock.calls.runner.node_speech import NodeSpeech
from voicedock.calls.runner.presynthesis import Presynthesis
from voicedock.calls.transfers.agent import AgentDialogue
from voicedock.calls.transfers.decision import NodeTranscriber
from voicedock.config import Settings
from voicedock.domain.records import utcnow
from voicedock.errors import ConfigError, PbxError, PbxUnavailable
from voicedock.knowledge.embeddings import Embeddings, EmbeddingsEndpoint
from voicedock.knowledge.endpoints import EmbeddingsEndpoints
from voicedock.knowledge.library import KnowledgeLibrary
from voicedock.knowledge.search import KnowledgeSearch
from voicedock.media.output_totals import OutputTotals
from voicedock.metrics import MetricsSources, ServiceMetrics
from voicedock.organizations.billing import CallRating
from voicedock.organizations.config_mirror import mirror_config
from voicedock.organizations.retention import retain_periodically
from voicedock.pbx.base import (
    InboundPbx,
    MediaAcceptingPbx,
    MediaEndpoint,
    MediaPbx,
    OriginateRequest,
    Pbx,
    PbxEventSink,
    PbxHealth,
    RehearsalPbx,
    TransferTarget,
)
from voicedock.store import Store, open_store
from voicedock.telemetry.tracing import Tracing
from voicedock.webhooks.runtime import Webhooks

log = logging.getLogger("voicedock.service")


class NoPbx:
    """``pbx.kind = "none"``: the API works, and placing or controlling a call is a 503."""

    async def start(self, sink: PbxEventSink) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def originate(self, request: OriginateRequest) -> None:
        raise PbxUnavailable("no PBX is configured (pbx.kind = none)")

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        raise PbxUnavailable("no PBX is configured (pbx.kind = none)")

    async def transfer(self, call_id: str, target: TransferTarget) -> None:
        raise PbxUnavailable("no PBX is configured (pbx.kind = none)")

    async def live_call_ids(self) -> set[str]:
        return set()

    def health(self) -> PbxHealth:
        return PbxHealth("none")


def make_pbx(settings: Settings, warm_dialogue: AgentDialogue | None = None) -> Pbx:
    """The adapter for ``pbx.kind``; imported lazily so unused adapters cost nothing.
    ``warm_dialogue``: what its warm transfers say to the agent and how they hear the answer
    (every server's; default a fresh ``AgentDialogue``)."""
    kind = settings.pbx.kind
    if kind == "none":
        return NoPbx()
    # A warm transfer's speech (briefing voice, the agent's spoken answer) is the call layer's.
    dialogue = warm_dialogue if warm_dialogue is not None else AgentDialogue()
    if kind == "asterisk" and settings.pbx.asterisk.servers:
        from voicedock.pbx.asterisk.node_apps import NodeApps
        from voicedock.pbx.asterisk.servers import several_asterisks

        return several_asterisks(
            settings.pbx.asterisk.servers,
            lambda: dialogue,
            lambda server: NodeApps.of(settings, server),
        )
    if kind == "asterisk":
        from voicedock.pbx.asterisk.node_apps import NodeApps
        from voicedock.pbx.asterisk.pbx import AsteriskPbx

        apps = NodeApps.of(settings)
        # This node's own ARI application (docs/nodes.md): its calls run there.
        asterisk = msgspec.structs.replace(settings.pbx.asterisk, app=apps.own)
        return AsteriskPbx(asterisk, warm_dialogue=dialogue, node_apps=apps)
    if kind == "freeswitch":
        from voicedock.pbx.freeswitch.pbx import FreeswitchPbx

        dids = [n.number for n in settings.numbers]
        return FreeswitchPbx(
            settings.pbx.freeswitch,
            dids=dids,
            warm_dialogue=dialogue,
            node_id=settings.node.id,  # each parked inbound call: claimed by one node
        )
    raise ConfigError("pbx.kind", f"{kind!r} is not supported")


def node_speech(settings: Settings) -> NodeSpeech:
    """The node's speech work, as ``[speech]`` (and the previews' share) sets it."""
    return NodeSpeech(settings.speech, previews=settings.limits.previews_per_node)


def _warm_dialogue(settings: Settings, speech: NodeSpeech) -> AgentDialogue:
    """What the adapter's warm transfers say to the agent and how they hear the answer: by
    voice through the node's recognition pool when it has one (bounded with the calls'
    transcriptions and seen by admission control), else the offline STT."""
    if speech.recognition is None:
        return AgentDialogue()
    return AgentDialogue(transcribe=NodeTranscriber(speech.recognition, settings.speech))


def _one_node(settings: Settings) -> bool:
    """SQLite serves one node only (``docs/nodes.md``)."""
    return settings.database.url.lower().startswith("sqlite")


def _media_endpoint(pbx: Pbx) -> MediaEndpoint | None:
    """Client media mode: where the PBX's media legs dial voicedock, served on ``/media``."""
    return pbx.media_endpoint() if isinstance(pbx, MediaAcceptingPbx) else None


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """What a service is built from (``Service.open`` makes them): the settings, the opened
    store, the PBX adapter, the node's speech work (made before the PBX, whose warm transfers
    transcribe the agent's spoken answer in its recognition pool), the lease's own connection
    (``None``: the store's) and the clock the engine and the dialer decide on (calling hours,
    campaign windows, schedules; tests shift it)."""

    settings: Settings
    store: Store
    pbx: Pbx
    speech: NodeSpeech
    lease_store: Store | None = None
    clock: Callable[[], datetime] = utcnow


@dataclass(frozen=True, slots=True)
class CallWork:
    """What the node's calls share beyond the engine: the calls a live conversation serves
    (with live listen), the calls' outbound media counts (the metrics), a call's speech
    providers and its first message synthesized while it rings."""

    live_calls: LiveCalls
    media_totals: OutputTotals
    call_speech: CallSpeech
    presynthesis: Presynthesis | None


class Service(Closable):
    def __init__(self, options: ServiceOptions) -> None:
        """Everything is made here, in order, each part given what it works with."""
        settings, store, pbx = options.settings, options.store, options.pbx
        check_supervisor_extension(settings.listen, settings.policy)
        self.settings, self.store, self.pbx, self.speech = settings, store, pbx, options.speech
        self.options = options  # what it was built from (its lease connection among them)
        # One egress guard: webhooks, tools, assistant-request and the calls' speech providers.
        self.webhooks = Webhooks(store, settings, node_id=node_id_of(settings))
        self.tracing, self.call_traces = self._traces()  # [telemetry]: none while off
        # Campaigns: contacts settle as their calls end; this node's dialer places their calls.
        self.campaigns = CampaignManager(store, settings, events=self.webhooks.campaign_events)
        work = self._call_work()
        # Live listen (GET /calls/{id}/listen): this node's calls' listeners, capped.
        self.listening = Listening(settings.listen, node_id_of(settings), store, work.live_calls)
        self.metrics = self._service_metrics(work)
        ending = CallsEnding()  # the node's drain waits for its calls to end
        self.engine = self._call_engine(work, ending)
        self.dialer = self._dialer()
        # Tools the test calls of test suites mock; every other call's go to the real server.
        self.tool_mocks = MockedTools(self.webhooks.requests)
        self.knowledge, self.knowledge_search = self._knowledge()  # /knowledge-bases, searches
        self.runner = self._runner(work)
        # Test suites' runs: each scenario a test call placed inside the PBX (no trunk), its
        # caller leg's events routed to the run, its other side taken as an inbound call.
        self.placed_test_calls = AwaitedCalls()
        self.engine.inbound.take_test_calls(self.placed_test_calls)
        self.rehearsals = self._rehearsals()
        # The calls a previous run (or a dead node) left: resumed or ended.
        self.recovery = CallRecovery(store, pbx, self.engine)
        # The voices each organization may use, and their previews (spare synthesis only).
        self.voices = Voices(settings, store, self.speech.synthesis, egress=self.webhooks.egress)
        # Client media mode: the PBX's media legs dial voicedock; the web app serves /media.
        self.media_acceptor = _media_endpoint(pbx)
        self.node, self.drain = self._node(ending)
        # Open event streams (GET /calls/{id}/events), capped on every node together.
        self.event_streams = EventStreams(store, settings.limits, self.node.id, self.node.run)
        self._tasks = Supervisor("service", log)  # drain, ring timeouts, retention, dialer
        self._closed = False

    def _traces(self) -> tuple[Tracing, CallTraces | None]:
        """The node's tracer ([telemetry]) and, while traces are on, the calls' traces: the
        engine's observer and the runner's watcher, naming each call's span in its webhooks."""
        tracing = Tracing.of(self.settings.telemetry, node_id_of(self.settings))
        if tracing.tracer is None:
            return tracing, None
        call_traces = CallTraces(tracing, tracing.tracer)
        self.webhooks.worker.trace_headers = call_traces.headers_for
        return tracing, call_traces

    def _call_work(self) -> CallWork:
        settings, speech = self.settings, self.speech
        call_speech = CallSpeech(
            self.store,
            settings.speech,
            settings.byok,
            self.webhooks.egress,
            health=speech.provider_health,
        )
        synthesis = speech.synthesis
        presynthesis = None if synthesis is None else Presynthesis(synthesis, call_speech, self.pbx)
        return CallWork(LiveCalls(), OutputTotals(), call_speech, presynthesis)

    def _service_metrics(self, work: CallWork) -> ServiceMetrics:
        """Prometheus metrics (GET /metrics): read at scrape time, plus per-call counts."""
        return ServiceMetrics(
            MetricsSources(
                self.store,
                self.pbx,
                work.media_totals,
                self.settings.speech,
                self.speech.admission,
                listening=self.listening,
                provider_health=self.speech.provider_health,
                recordings_directory=self.settings.recordings.directory,
            )
        )

    def _call_engine(self, work: CallWork, ending: CallsEnding) -> CallEngine:
        """Every change to a call tells the webhooks (the outbox, in the change's
        transaction), the campaigns, the metrics, the node's drain, the numbers' health and
        the calls' traces."""
        # Each outbound call's number judged by what became of its calls (docs/api.md).
        numbers = NumberHealthWatch(self.settings.number_health, self.webhooks.number_alerts)
        traces = () if self.call_traces is None else (self.call_traces,)
        observers = Observers(
            self.webhooks.publisher,
            self.campaigns,
            self.metrics.observer,
            ending,
            numbers,
            *traces,
        )
        options = EngineOptions(
            node_id=node_id_of(self.settings),
            observers=observers,
            live_calls=work.live_calls,
            assistant_server=self.webhooks.requests,
            presynthesizer=work.presynthesis,
            admission=self.speech.admission,
            # Each call priced as it is reported; spending thresholds announced by webhook.
            rating=CallRating(self.webhooks.spend_alerts),
        )
        return CallEngine(self.store, self.pbx, self.settings, self.options.clock, options)

    def _dialer(self) -> Dialer:
        return Dialer(
            self.store,
            self.engine,
            self.campaigns,
            self.settings.policy,
            self.options.clock,
            # A draining node dials nothing: the other nodes' dialers take the work.
            can_dial=lambda: self.pbx.health().can_place_calls and not self.node.draining,
        )

    def _knowledge(self) -> tuple[KnowledgeLibrary, KnowledgeSearch]:
        """The organizations' knowledge bases: what they add and how they are searched, both
        with the organization's own embeddings endpoint where it has set one (through the
        egress guard: the webhooks'), else the operator's where there is one."""
        embeddings = Embeddings(self.webhooks.egress)
        operator = self.settings.knowledge.embeddings
        endpoint = None
        if operator.url:
            endpoint = EmbeddingsEndpoint(
                operator.url.rstrip("/"),
                operator.model,
                operator.api_key or None,
                operator.timeout_seconds,
                tenant=False,
            )
        endpoint_for = EmbeddingsEndpoints(
            self.store, endpoint, self.settings.byok, timeout_s=operator.timeout_seconds
        )
        library = KnowledgeLibrary(self.store, self.settings.knowledge, embeddings, endpoint_for)
        return library, KnowledgeSearch(self.store, embeddings, endpoint_for)

    def _runner(self, work: CallWork) -> CallRunner:
        """Starts the live conversation of each answered call (a PBX that carries media)."""
        options = RunnerOptions(
            self.speech,
            work.call_speech,
            work.presynthesis,
            tool_server=self.tool_mocks,
            knowledge=self.knowledge_search,
            media_totals=work.media_totals,
            watchers=(self.metrics.live,)
            + (() if self.call_traces is None else (self.call_traces,)),
        )
        return CallRunner(self.engine, self.pbx, self.store, self.settings, options)

    def _rehearsals(self) -> Rehearsals:
        settings, pbx = self.settings, self.pbx
        simulated = None
        if isinstance(pbx, RehearsalPbx) and isinstance(pbx, MediaPbx):
            simulated = PbxSimulatedCalls(
                pbx,
                self.store,
                self.placed_test_calls,
                self.tool_mocks,
                caller_voice(settings.speech),
                caller_ears(self.speech.recognition, settings.speech),
                caller_model=operator_model(settings.rehearsal.caller_model),
                max_persona_turns=settings.rehearsal.max_persona_turns,
            )
        return Rehearsals(
            self.store,
            settings,
            simulated,
            egress=self.engine.egress_policy,
            events=self.webhooks.test_run_events,
            judge=operator_model(settings.rehearsal.judge()),
        )

    def _node(self, ending: CallsEnding) -> tuple[Node, Drain]:
        """This node's lease among the nodes sharing the store (SQLite serves one node only),
        and its drain (SIGTERM or `voicedock nodes drain`: no new call, the calls held
        finish, then stop)."""
        settings, store = self.settings, self.store
        node = Node(
            store,
            self.engine,
            self.pbx,
            self.recovery,
            settings.node,
            one_node=_one_node(settings),
            lease_store=self.options.lease_store,
        )
        self.metrics.draining = lambda: node.draining
        drain = Drain(
            node,
            store,
            settings.node,
            serving=lambda: [call.call_id for call in self.runner.served.every()],
            ending=ending,
        )
        return node, drain

    @classmethod
    async def open(
        cls, settings: Settings, pbx: Pbx | None = None, clock: Callable[[], datetime] = utcnow
    ) -> Self:
        store = await open_store(settings.database.url)
        lease_store: Store | None = None
        speech = node_speech(settings)
        try:
            await store.migrate()
            if not _one_node(settings):
                # The lease on a connection of its own (calls/nodes/lease.py): a node busy with
                # many calls is never taken for dead because its heartbeat waited for the pool.
                lease_store = await open_store(settings.database.url, connections=1)
            if pbx is None:
                pbx = make_pbx(settings, _warm_dialogue(settings, speech))
            service = cls(ServiceOptions(settings, store, pbx, speech, lease_store, clock))
        except BaseException:
            await speech.aclose()
            if lease_store is not None:
                await lease_store.aclose()
            await store.aclose()
            raise
        return await started(service, service.start)

    async def start(self) -> None:
        # An [[assistants]] entry whose calls could not be placed stops start-up, naming it
        # (a ConfigError, as any setting the node cannot run; it may read voice files).
        await asyncio.to_thread(
            check_configured_assistants, self.settings, self.engine.egress_policy
        )
        # First of what changes anything, so that a refused node changes nothing. Listed
        # before the PBX connects, so none of this run's calls is among them, nor a live node's.
        leftovers, lost = await self.node.join()
        await self.node.start()
        # The node's voices, read once in a worker thread: assistants' voices are checked
        # against them on the event loop (calls/organization_voices.py).
        await local_voices(self.settings)
        await mirror_config(self.store, self.settings)
        await self.webhooks.start()  # also delivers what a previous run left pending
        if isinstance(self.pbx, InboundPbx):
            self.pbx.set_inbound_handler(self.engine.inbound.accept)
        await self.runner.start(warm_up=True)
        await self._tasks.start()
        await self.rehearsals.start()
        self._tasks.spawn(self.drain.run(), name="drain")  # waits until asked
        self._tasks.spawn(self.engine.ring_timeouts.run(), name="ring-timeouts")
        if self.settings.recordings.directory and self.settings.recordings.retention_days:
            recordings = sweep_periodically(self.settings.recordings)
            self._tasks.spawn(recordings, name="recordings-retention")
        kept = self.settings.retention
        if kept.call_days or kept.transcript_days or kept.audit_days:
            retention = retain_periodically(self.store, self.settings.retention)
            self._tasks.spawn(retention, name="call-retention")
        try:
            await self.pbx.start(self.placed_test_calls.route(self.runner.events.handle_pbx_event))
        except PbxError as exc:
            # The API keeps serving; the adapter reconnects and reconciles on its own.
            log.warning("PBX not reachable at start-up: %s", exc)
        # Before the API serves: each call this node's previous run left live (a crash, kill
        # -9) whose caller still waits goes on (resumed), the others' legs are hung up and they
        # end "service-restart" (calls/recovery.py); dead nodes' calls end "node-lost".
        calls = self.settings.calls
        async with asyncio.TaskGroup() as tg:
            tg.create_task(
                self.recovery.recover(
                    leftovers,
                    resumer=self.runner.resuming if calls.resume_after_restart else None,
                    resume_message=calls.resume_message,
                )
            )
            tg.create_task(self.node.end_lost(lost))
        # After recovery: a contact whose call a previous run left is settled before dialing.
        self._tasks.spawn(self.dialer.run(), name="campaign-dialer")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._tasks.aclose()
        try:
            await self.rehearsals.aclose()  # its test calls hang up with the runner's calls
            await self.runner.aclose()  # hangs up live calls while the PBX is still there
            await self.pbx.aclose()
        finally:
            await self.node.aclose()  # the lease goes: no node takes over what ended cleanly
            await self.knowledge_search.aclose()  # its embeddings endpoint's sessions
            await self.webhooks.aclose()  # never raises; pending rows stay for the next start
            await self.store.aclose()
            if self.options.lease_store is not None:
                await self.options.lease_store.aclose()
            if self.call_traces is not None:
                self.call_traces.close()  # calls still open here: their spans end now
            await self.tracing.aclose()  # the last spans exported

    async def __aenter__(self) -> Self:
        return self
