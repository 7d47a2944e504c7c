"""Domain records shared by the store, the call engine, the webhooks and the API.

Plain dataclasses: the store maps them to rows, the API maps them to the documented JSON.
Timestamps are timezone-aware UTC ``datetime``s.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from voicedock.domain.ai_disclosure import AiDisclosure
from voicedock.domain.assistant_config import AssistantConfig
from voicedock.domain.attestation import CallerAttestation
from voicedock.domain.billing import CallCost
from voicedock.domain.flows import FlowProgress
from voicedock.domain.json import JsonObject, JsonValue
from voicedock.domain.knowledge import KnowledgeEmbeddings
from voicedock.domain.number_health import NumberHealth
from voicedock.domain.squads import CallSquad, Member, member_named
from voicedock.domain.timestamps import utcnow as utcnow
from voicedock.domain.traffic_split import TrafficShare
from voicedock.domain.vocabulary import Vocabulary


class CallStatus(enum.StrEnum):
    """The documented status values. ``ended`` and ``failed`` are terminal. ``scheduled``: an
    outbound call waiting for its time (nothing at the PBX, counted by no limit yet)."""

    SCHEDULED = "scheduled"
    CONNECTING = "connecting"
    IN_PROGRESS = "in-progress"
    ENDED = "ended"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (CallStatus.ENDED, CallStatus.FAILED)

    @property
    def active(self) -> bool:
        """At the PBX, or on its way to it: counted by the limits, owned by a node."""
        return self in (CallStatus.CONNECTING, CallStatus.IN_PROGRESS)


# Allowed moves of the call state machine; terminal states never move again.
TRANSITIONS: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.SCHEDULED: frozenset({CallStatus.CONNECTING, CallStatus.ENDED}),
    CallStatus.CONNECTING: frozenset({CallStatus.IN_PROGRESS, CallStatus.ENDED, CallStatus.FAILED}),
    CallStatus.IN_PROGRESS: frozenset({CallStatus.ENDED, CallStatus.FAILED}),
    CallStatus.ENDED: frozenset(),
    CallStatus.FAILED: frozenset(),
}


def can_transition(current: CallStatus, new: CallStatus) -> bool:
    return new in TRANSITIONS[current]


class Direction(enum.StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class KeyScope(enum.StrEnum):
    """What an API key may do within its organization.

    ``read_only``: GET requests only. ``full``: every call and resource endpoint.
    ``admin``: that plus managing the organization's API keys. Hearing a live call is a grant
    of its own (``ApiKey.listen``), beside the scope.
    """

    READ_ONLY = "read_only"
    FULL = "full"
    ADMIN = "admin"


@dataclass(slots=True)
class Organization:
    id: str
    name: str  # the operator's identifier (the configuration's ``organization = "..."``)
    created_at: datetime = field(default_factory=utcnow)
    display_name: str = ""  # the organization's own label for itself ("" : its name)
    # Settings a new assistant takes when its body leaves them out (docs/organization.md).
    assistant_defaults: dict[str, JsonValue] = field(default_factory=dict)
    # The operator's override of [[limits.organizations]] max_concurrent_calls (None: the file's).
    max_concurrent_calls: int | None = None
    # The operator's override of [limits] scheduled_calls_per_organization (None: the file's).
    max_scheduled_calls: int | None = None
    # The organization requires the AI disclosure on its calls (the operator may already).
    ai_disclosure_required: bool = False
    # The organization's own calling hours ("HH:MM-HH:MM", the callee's local time): they
    # narrow the operator's, never widen them (docs/compliance.md). None: the operator's only.
    calling_hours: str | None = None
    # Keyterms and pronunciations for every call of its assistants, after each assistant's
    # own (docs/speech.md). None: none.
    vocabulary: Vocabulary | None = None
    # Its own embeddings endpoint for its knowledge bases, instead of the operator's
    # (docs/knowledge.md). None: the operator's, if any.
    knowledge_embeddings: KnowledgeEmbeddings | None = None


@dataclass(slots=True)
class ApiKey:
    id: str
    organization_id: str
    key_hash: str  # sha256 hex of the secret; the secret itself is never stored
    name: str = ""
    created_at: datetime = field(default_factory=utcnow)
    revoked_at: datetime | None = None
    scope: KeyScope = KeyScope.FULL
    # May hear live calls (GET /calls/{id}/listen): full and admin keys by default, a read-only
    # key only where the operator grants it (``listen_by_default``; voicedock keys).
    listen: bool = False


def listen_by_default(scope: KeyScope) -> bool:
    """Whether a new key of ``scope`` listens unless the operator says otherwise: a key that
    may change things may hear them; a read-only key (a dashboard) may not."""
    return scope is not KeyScope.READ_ONLY


@dataclass(slots=True)
class ConsoleSession:
    """A signed-in web console: an opaque cookie bound to the API key it was exchanged for."""

    token_hash: str  # sha256 hex of the cookie value; the value itself is never stored
    api_key_id: str
    organization_id: str
    csrf_token: str  # sent back in X-CSRF-Token on every state-changing request
    expires_at: datetime
    created_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class Trunk:
    """A SIP trunk as defined in the configuration (read-only through the API)."""

    name: str
    pbx_endpoint: str  # Asterisk PJSIP endpoint / FreeSWITCH gateway name
    codec: str = "ulaw"  # one of domain.audio.CALL_MEDIA_FORMATS
    description: str = ""
    pbx: str = ""  # the PBX server carrying it ([[pbx.asterisk.servers]] name); "": the only one
    max_cps: int = 0  # new calls per second the carrier takes on it; 0: no limit
    max_channels: int = 0  # calls at once, inbound and outbound; 0: no limit


@dataclass(slots=True)
class PhoneNumber:
    id: str
    organization_id: str
    number: str  # E.164
    trunk: str
    max_concurrent_calls: int = 1
    assistant_id: str | None = None  # answers inbound calls to this number
    label: str = ""
    squad_id: str | None = None  # its squad answers inbound calls instead (docs/squads.md)
    # The language inbound calls to it open in (a BCP 47 primary tag; None: the caller's
    # number says, by the assistant's ``languages[].calling_codes``).
    language: str | None = None
    last_used_at: datetime | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    # Its inbound calls split between versions of its assistant by the caller's number (A/B;
    # None: the assistant's own split, if any).
    traffic_split: list[TrafficShare] | None = None
    # What became of the outbound calls made from it lately (domain/number_health.py), as of
    # its last call's end; when it was flagged unhealthy, until when it rests, and from when
    # its calls count (the end of a rest, or a reset; None: its window alone).
    health: NumberHealth | None = None
    flagged_at: datetime | None = None
    resting_until: datetime | None = None
    health_since: datetime | None = None


@dataclass(slots=True)
class Assistant:
    id: str
    organization_id: str
    name: str
    config: AssistantConfig
    business_name: str = ""
    active: bool = True
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    version: int = 1  # its current version (``AssistantVersion``): 1 when created, +1 a change
    # The versions its calls run by the other party's number (A/B); None: the current one.
    traffic_split: list[TrafficShare] | None = None
    # The test suite a version must pass before it is published (None: no gate).
    release_gate: str | None = None

    def same_settings(self, other: Assistant) -> bool:
        """Whether ``other`` sets what this assistant sets (a change to it would make a
        version changing nothing)."""
        return (self.name, self.config, self.business_name, self.active) == (
            other.name,
            other.config,
            other.business_name,
            other.active,
        )


@dataclass(slots=True)
class AssistantVersion:
    """An assistant as one change left it, never changed after: what calls on that version
    ran, and what a rollback brings back."""

    assistant_id: str
    organization_id: str
    version: int
    name: str
    config: AssistantConfig
    business_name: str
    active: bool
    created_by: str | None  # the API key that made the change (None: the operator)
    created_at: datetime = field(default_factory=utcnow)
    published_at: datetime | None = None  # when it went live (None: a draft, never live)

    @classmethod
    def of(cls, assistant: Assistant, by: str | None, *, draft: bool = False) -> AssistantVersion:
        """``assistant`` as its version ``assistant.version``, made by ``by``: live from its
        making, or a ``draft`` that goes live when published."""
        return cls(
            assistant_id=assistant.id,
            organization_id=assistant.organization_id,
            version=assistant.version,
            name=assistant.name,
            config=assistant.config,
            business_name=assistant.business_name,
            active=assistant.active,
            created_by=by,
            created_at=assistant.updated_at,
            published_at=None if draft else assistant.updated_at,
        )

    @property
    def draft(self) -> bool:
        """Whether it was never live (made by ``POST /assistants/{id}/drafts``, not published)."""
        return self.published_at is None

    def restored(self, onto: Assistant) -> Assistant:
        """``onto`` (the assistant now) with this version's settings and number."""
        return dataclasses.replace(
            onto,
            name=self.name,
            config=self.config,
            business_name=self.business_name,
            active=self.active,
            version=self.version,
        )


@dataclass(slots=True)
class CallerMemory:
    """What a call of an assistant with ``memory`` left of the other party for its next calls:
    the call's summary and the facts its analysis extracted, under the party's number. Goes
    with the call (its retention, its deletion)."""

    id: str
    organization_id: str
    party: str  # E.164: the callee of an outbound call, the caller of an inbound one
    call_id: str
    assistant_id: str | None
    summary: str
    facts: dict[str, JsonValue] | None = None  # the analysis's structured data
    created_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class ToolTemplate:
    """A tool an organization stores once and its assistants reference by id
    (``{"template_id": ...}`` in their ``tools``)."""

    id: str
    organization_id: str
    tool: JsonObject  # the tool, as an assistant's tools[] item (type, name, ...)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    version: int = 1  # its current version (``RecordVersion``): 1 when created, +1 a change


@dataclass(slots=True)
class AnalysisTemplate:
    """An analysis plan an organization stores once and its assistants reference by id
    (``analysis_plan`` = ``{"template_id": ...}``); ``name`` is for people, ``plan`` is an
    assistant's ``analysis_plan`` (summary_prompt, structured_data_schema,
    success_evaluation_rubric)."""

    id: str
    organization_id: str
    name: str
    plan: JsonObject
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class ProviderKey:
    """An organization's own key for a cloud provider (bring your own key), referenced by
    name from its assistants' provider sections (``api_key_ref``). ``sealed``: the key under
    the operator's key (``domain/key_box.py``), never the key itself; ``last4`` its end, for
    the masked listing."""

    id: str
    organization_id: str
    name: str
    provider: str
    sealed: str
    last4: str
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class Call:
    id: str
    organization_id: str
    direction: Direction
    status: CallStatus
    caller_phone: str | None  # the remote party (callee of an outbound call)
    assistant_phone: str | None  # our number
    number_id: str | None = None
    assistant_id: str | None = None
    assistant_version: int | None = None  # the saved assistant's version it ran
    agent_name: str | None = None
    business_name: str | None = None
    assistant_config: AssistantConfig = field(default_factory=AssistantConfig)  # resolved
    first_message: str | None = None
    context: str | None = None
    error: str | None = None
    end_reason: str | None = None
    pbx_call_ref: str | None = None  # the PBX's channel/uuid of the remote leg
    started_at: datetime | None = None  # answered
    ended_at: datetime | None = None
    duration_seconds: int | None = None
    summary: str | None = None
    analysis_result: dict[str, JsonValue] | None = None
    latency: list[dict[str, JsonValue]] = field(default_factory=list)  # per-turn breakdown
    # The media leg after the answer, in ms from it: media_connected_ms, first_audio_ms.
    timings: dict[str, JsonValue] | None = None
    transferred_to: str | None = None
    transferred_at: datetime | None = None
    owner_node: str | None = None  # the voicedock node serving the call ([node] id)
    pbx: str | None = None  # the PBX server carrying the call (None: the only one)
    campaign_id: str | None = None  # the campaign it dials a contact of
    trunk: str | None = None  # the trunk carrying it (its channel counts against the trunk)
    api_key_id: str | None = None  # the API key that placed it (None: inbound, or before keys)
    # The call's recording under the serving node's [recordings] directory (None: none).
    recording_path: str | None = None
    recording_duration_seconds: float | None = None
    # Answering-machine detection: {"result": human|machine|screening|unknown,
    # "evidence": {...}}.
    answering_machine: dict[str, JsonValue] | None = None
    # The consent plan's outcome: {"mode", "outcome": announced|accepted|refused|no_answer,
    # "at"}; None: no plan (or the call ended before its message was said).
    consent: dict[str, JsonValue] | None = None
    # How the call gave its required AI disclosure; None: not required (docs/compliance.md).
    ai_disclosure: AiDisclosure | None = None
    # Where the assistant's flow is and was: its node, path and fields (docs/flows.md); None:
    # no flow.
    flow: FlowProgress | None = None
    # An inbound caller's STIR/SHAKEN attestation as the carrier sent it (not verified).
    caller_attestation: CallerAttestation | None = None
    # The client's own object given when the call was placed: returned and in every webhook.
    metadata: dict[str, JsonValue] | None = None
    # A scheduled call: dialed from scheduled_at, never after latest_at; how long it may ring.
    scheduled_at: datetime | None = None
    latest_at: datetime | None = None
    ring_timeout_seconds: int | None = None
    # What the call used of its speech providers (``domain.usage``): [{"kind": "stt",
    # "provider", "seconds"}, {"kind": "tts", "provider", "characters"}]; None: not recorded.
    speech_usage: list[dict[str, JsonValue]] | None = None
    # Times a turn moved on to the next entry of a fallback plan (its provider-switch events),
    # stored when the call ends; None: not recorded (no conversation, calls before it).
    provider_switches: int | None = None
    # The test run whose simulated caller the call served (``/test-suites``): kept out of
    # the calls list and usage unless asked for. None: a real caller's call.
    test_run_id: str | None = None
    # The squad the call was placed with (``/squads``): its members as placed, the first one
    # the call's assistant above. None: one assistant for the whole call.
    squad: CallSquad | None = None
    # What the call cost by its organization's rate card, rated once when it ended
    # (docs/billing.md). None: not answered, no rate card, or a test run's call.
    cost: CallCost | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    seq: int = 0  # insertion order, assigned by the store; with created_at, the opaque cursor

    @property
    def recording_url(self) -> str | None:
        """Where its recording downloads (``GET /calls/{id}/recording``), if it has one."""
        return f"/calls/{self.id}/recording" if self.recording_path else None

    @property
    def squad_id(self) -> str | None:
        """The stored squad the call was placed with (None: none, or a squad of its own)."""
        return None if self.squad is None else self.squad.squad_id

    @property
    def squad_version(self) -> int | None:
        """The version of the stored squad the call was placed with (None: none)."""
        return None if self.squad is None else self.squad.version


@dataclass(frozen=True, slots=True)
class NodeLease:
    """A running voicedock node as the shared database knows it: alive while ``lease_until``
    is ahead (it renews it), dead once it passed. ``run`` tells two starts of one node id apart;
    ``pid_space`` names the process namespace ``pid`` is valid in ("" when unknown);
    ``draining``: it takes no new calls and stops once its calls have ended; ``schema_version``:
    the newest migration its code knows (None: a version from before nodes recorded it)."""

    id: str
    host: str
    pid: int
    pid_space: str
    run: str
    started_at: datetime
    lease_until: datetime
    draining: bool = False
    schema_version: int | None = None


@dataclass(frozen=True, slots=True)
class EventStream:
    """An open ``GET /calls/{id}/events`` stream as every node counts it: the node (and run of
    it) serving it, whose lease it lives by, and the organization and API key that opened it."""

    id: str
    node_id: str
    node_run: str
    organization_id: str
    api_key_id: str
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class OpenStreams:
    """Event streams open on the live nodes: the organization's, and of those the key's."""

    organization: int
    api_key: int


@dataclass(slots=True)
class CallMessage:
    call_id: str
    role: str  # "assistant" | "user" | "system"
    content: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    interrupted: bool = False
    seq: int = 0
    member: str | None = None  # the squad's member who spoke or heard it (None: no squad)
    language: str | None = None  # the language it was said in (None: no languages followed)
    flow_node: str | None = None  # the flow's node it ended in (None: no flow)


@dataclass(slots=True)
class CallEvent:
    call_id: str
    type: str  # e.g. "status", "control", "pbx", "security"
    data: Mapping[str, JsonValue]  # read-only: what happened, as it was recorded
    created_at: datetime = field(default_factory=utcnow)
    seq: int = 0


@dataclass(slots=True)
class IdempotencyRecord:
    organization_id: str
    key: str
    request_hash: str
    response_status: int
    response_body: dict[str, JsonValue]
    created_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True, kw_only=True)
class Squad:
    """An organization's squad (``/squads``): its members, the first one answering."""

    id: str
    organization_id: str
    name: str
    members: list[Member]
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    version: int = 1  # its current version (``RecordVersion``): 1 when created, +1 a change

    def member(self, name: str) -> Member | None:
        return member_named(self.members, name)
