"""The call engine: places outbound calls, takes inbound ones, follows the PBX's events and
stores what the live conversations say. ``CallEngine`` builds its parts in order, one per job,
each given what it works with:

* ``outbound`` (``outbound.py``): ``POST /calls/outbound``, placed now or scheduled;
* ``placement`` (``placement.py``): ``place``, the one function that places an outbound call,
  whoever asks (the API, a campaign's contact, a scheduled call come due: the dialer);
* ``scheduled`` (``scheduling.py``): calls to dial later, claimed when due, cancelled;
* ``pbx_events`` and ``ring_timeouts`` (``pbx_events.py``): the PBX's events applied to their
  calls, and calls ringing past their ring timeout;
* ``inbound`` (``inbound.py``): a call to one of our numbers, taken or rejected;
* ``control`` (``call_control.py``): control commands;
* ``records`` (``live_records.py``): what a live conversation writes of its call.

Below them, ``timeline.py`` writes every change to a call (its transition, its ``status`` event,
the observers told in the same transaction), ``reports.py`` sends the end-of-call report once
everything about a call is stored, ``ringing.py`` keeps the ringing calls' deadlines and
``attempts.py`` makes a write one attempt whose in-memory effects are undone if it does not
commit. Restart recovery (``calls/recovery.py``) and the runner (``calls/runner/``) build on
these parts. Every part stands on the same ``Ground`` (``ground.py``): the store, the settings,
the clock, the node and the timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from voicedock.calls.assistants.request import AssistantServer
from voicedock.calls.commands import CommandRunner
from voicedock.calls.compliance import Compliance
from voicedock.calls.control import LiveCalls
from voicedock.calls.engine.call_control import CallControl
from voicedock.calls.engine.ground import Ground
from voicedock.calls.engine.inbound import InboundCalls
from voicedock.calls.engine.live_records import LiveRecords
from voicedock.calls.engine.outbound import OutboundCalls
from voicedock.calls.engine.pbx_events import PbxEvents, RingTimeouts
from voicedock.calls.engine.placement import Originating, Placement
from voicedock.calls.engine.presynthesizer import Presynthesizer
from voicedock.calls.engine.reports import EndOfCallReports
from voicedock.calls.engine.ringing import RING_GRACE_SECONDS, RingDeadlines
from voicedock.calls.engine.scheduling import ScheduledCalls
from voicedock.calls.engine.timeline import Timeline
from voicedock.calls.observer import Observers
from voicedock.calls.outbound.dial_pacing import OrganizationLimits
from voicedock.calls.speech_admission import Kind, SpeechAdmission
from voicedock.calls.transfer_legs import TrunkLegs
from voicedock.config import Settings, default_node_id
from voicedock.domain.assistant_config import AssistantConfig
from voicedock.domain.records import utcnow
from voicedock.egress.settings import egress_policy
from voicedock.organizations.billing import CallRating
from voicedock.organizations.trunk_access import TrunkAccess
from voicedock.pbx.base import Pbx
from voicedock.store.base import Store


def node_id_of(settings: Settings) -> str:
    """The node this process runs as: ``[node] id``, else its host's name."""
    return settings.node.id or default_node_id()


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """What the engine is given beyond the store, the PBX, the settings and the clock.

    ``node_id``: the node it runs on (``node_id_of(settings)`` unless given); ``observers``:
    told of every call event and end-of-call report, in the transaction that stores it (the
    webhooks, the campaigns, the metrics); ``live_calls``: the calls a live conversation
    serves on this node (shared with live listen); ``assistant_server``: the organizations'
    servers that may choose an inbound call's assistant; ``presynthesizer``: told of each call
    whose first message may be synthesized while it rings; ``admission``: refuses new calls
    while the node's offline speech is at capacity; ``ring_grace``: how long past its ring
    timeout a call may ring; ``rating``: prices each call as it is reported
    (``organizations/billing.py``)."""

    node_id: str | None = None
    observers: Observers = field(default_factory=Observers)
    live_calls: LiveCalls = field(default_factory=LiveCalls)
    assistant_server: AssistantServer | None = None
    presynthesizer: Presynthesizer | None = None
    admission: SpeechAdmission | None = None
    ring_grace: float = RING_GRACE_SECONDS
    rating: CallRating | None = None


class CallEngine:
    """The engine's parts, one per job, built here in order and reached by the job they do
    (``engine.outbound.ask``, ``engine.control``, ``engine.records``…): the engine is where
    they are wired together, not a layer in front of them."""

    def __init__(
        self,
        store: Store,
        pbx: Pbx,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        options: EngineOptions | None = None,
    ) -> None:
        options = options if options is not None else EngineOptions()
        # The node this engine runs on: its calls carry it (calls/nodes/lease.py).
        self.node_id = options.node_id or node_id_of(settings)
        # What the URLs of a call's assistant may name (checked when the call is placed).
        self.egress_policy = egress_policy(settings)
        # [[trunks]] organizations: a caller number is only taken on a trunk open to its owner.
        self.trunk_access = TrunkAccess(settings.trunks)
        self.observers = options.observers
        self.live_calls = options.live_calls
        self._admission = options.admission
        # The do-not-call list and calling hours every automated outbound call passes.
        self.compliance = Compliance(settings.compliance)
        originating = Originating()
        legs = TrunkLegs(store, self.trunk_access, OrganizationLimits(settings.limits), clock)
        commands = CommandRunner(
            store,
            pbx,
            settings.policy,
            self.compliance.do_not_call,
            self.live_calls,
            clock,
            legs,
            self.observers,
            wait_originated=originating.wait,
        )
        ground = self._build_ground(store, settings, clock, commands, options)
        self._build_outbound(ground, pbx, originating, options)
        self._build_following(ground, pbx, commands, options)

    def _build_ground(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], datetime],
        commands: CommandRunner,
        options: EngineOptions,
    ) -> Ground:
        """``ringing``, ``reports`` and ``timeline``, what follows every change to a call; and
        the ``Ground`` every part stands on."""
        self.ringing = RingDeadlines(options.ring_grace)
        self.reports = EndOfCallReports(self.observers, options.rating)
        self.timeline = Timeline(
            self.observers, self.live_calls, commands, self.ringing, self.reports
        )
        return Ground(store, settings, clock, self.node_id, self.timeline)

    def _build_outbound(
        self, ground: Ground, pbx: Pbx, originating: Originating, options: EngineOptions
    ) -> None:
        """``placement``, ``scheduled`` and ``outbound``: the calls voicedock places."""
        self.placement = Placement(
            ground, pbx, self.trunk_access, originating, self.ringing, options.presynthesizer
        )
        self.scheduled = ScheduledCalls(ground, self.trunk_access, self.compliance)
        self.outbound = OutboundCalls(
            ground,
            self.egress_policy,
            self.trunk_access,
            self.placement,
            self.scheduled,
            self.compliance,
            options.admission,
        )

    def _build_following(
        self, ground: Ground, pbx: Pbx, commands: CommandRunner, options: EngineOptions
    ) -> None:
        """``pbx_events``, ``ring_timeouts``, ``inbound``, ``control`` and ``records``: what
        follows a call once it exists (or arrives)."""
        self.pbx_events = PbxEvents(ground, pbx, commands)
        self.ring_timeouts = RingTimeouts(ground, pbx, self.ringing)
        self.inbound = InboundCalls(
            ground,
            assistant_server=options.assistant_server,
            admission=options.admission,
            presynthesizer=options.presynthesizer,
        )
        self.control = CallControl(ground, commands, self.scheduled)
        self.records = LiveRecords(ground, self.live_calls, self.reports)

    def speech_refusal(self, assistant_config: AssistantConfig, kind: Kind) -> int | None:
        """``None``: a new call of this assistant may start; else the seconds after which to
        try again, the node's offline speech being at capacity (``calls/speech_admission.py``)."""
        if self._admission is None:
            return None
        return self._admission.refusal(assistant_config, kind)
