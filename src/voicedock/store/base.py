"""The repository interface, implemented by SQLite (embedded default) and PostgreSQL.

Every write goes through ``Store.transaction()``: what one request or one PBX event changes
(a call row, its event, the idempotency record, a webhook outbox row) commits together or not
at all. Reads that need no consistency with a write use the store's own methods.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from voicedock.domain.campaigns import (
    Campaign,
    CampaignContact,
    CampaignProgress,
    ContactState,
)
from voicedock.domain.records import (
    AnalysisTemplate,
    ApiKey,
    Assistant,
    Call,
    CallEvent,
    CallMessage,
    CallStatus,
    ConsoleSession,
    EventStream,
    IdempotencyRecord,
    NodeLease,
    OpenStreams,
    Organization,
    PhoneNumber,
    ProviderKey,
    ToolTemplate,
    Trunk,
)
from voicedock.domain.webhooks import Outbox, WebhookEndpoint


@dataclass(frozen=True, slots=True)
class CallCursor:
    """Where a page of ``GET /calls`` ended: the last call's ``created_at`` and ``seq``, both
    immutable, so the next page starts right after it in the list's own order (newest first)
    however calls are inserted or updated meanwhile."""

    created_at: datetime
    seq: int


@dataclass(frozen=True, slots=True)
class CallQuery:
    """Filters of ``GET /calls``; ``after`` is the decoded opaque cursor."""

    organization_id: str
    limit: int = 100
    offset: int = 0
    status: CallStatus | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    campaign_id: str | None = None  # only the calls this campaign placed
    after: CallCursor | None = None  # newest first: only calls listed after this one


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """What the metrics read from the database at scrape time (every node's calls)."""

    # (direction, status, end_reason or "") -> calls
    calls: dict[tuple[str, str, str], int]
    # (trunk or "", pbx or "", node or "") -> calls not yet ended
    active_calls: dict[tuple[str, str, str], int]
    # "pending" | "delivered" | "failed" (given up) -> webhook deliveries in the outbox
    webhook_deliveries: dict[str, int]


@dataclass(frozen=True, slots=True)
class ScheduledWaiting:
    """An organization's calls waiting with ``scheduled_at`` (not dialed, not ended)."""

    count: int
    first_due: datetime | None  # the earliest ``scheduled_at`` among them (None: none waits)


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """``GET /usage``: an organization's calls created in ``[start, end)``, grouped."""

    organization_id: str
    start: datetime
    end: datetime
    group_by: str  # domain.usage.GROUP_BY


@dataclass(frozen=True, slots=True)
class CallUsageRow:
    key: str | None  # the group: a UTC day (YYYY-MM-DD) or an id (None: calls without one)
    direction: str
    status: str
    end_reason: str | None
    calls: int
    connected_ms: int
    billable_seconds: int


@dataclass(frozen=True, slots=True)
class SpeechUsageRow:
    key: str | None
    kind: str  # "stt" | "tts"
    provider: str
    seconds: float
    characters: int


@dataclass(frozen=True, slots=True)
class UsageRows:
    calls: list[CallUsageRow]
    speech: list[SpeechUsageRow]


@dataclass(frozen=True, slots=True)
class CallPage:
    calls: list[Call]
    total: int


class Transaction(Protocol):
    """Writes (and reads that must see them) inside one database transaction."""

    # organizations and keys
    async def insert_organization(self, org: Organization) -> None: ...
    async def update_organization(self, org: Organization) -> None: ...
    async def insert_api_key(self, key: ApiKey) -> None: ...
    async def update_api_key(self, key: ApiKey) -> None:
        """Write the name, the revocation time and the listen grant."""
        ...

    # web console sessions
    async def insert_console_session(self, session: ConsoleSession) -> None: ...
    async def delete_console_session(self, token_hash: str) -> None: ...
    async def purge_console_sessions(self, now: datetime) -> None:
        """Forget sessions that expired before ``now``."""
        ...

    # configuration-owned trunks are mirrored into the store at start-up
    async def upsert_trunk(self, trunk: Trunk) -> None: ...

    # phone numbers
    async def insert_phone_number(self, number: PhoneNumber) -> None: ...
    async def update_phone_number(self, number: PhoneNumber) -> None: ...
    async def delete_phone_number(self, organization_id: str, number_id: str) -> bool: ...

    async def reserve_phone_number(
        self,
        organization_id: str,
        number_id: str | None,
        now: datetime,
        among: Sequence[str] = (),
        trunks: Collection[str] | None = None,
    ) -> PhoneNumber | None:
        """Lock and return a caller number for a new outbound call.

        ``among`` (without ``number_id``): only these of the organization's numbers.
        ``trunks``: only numbers on these trunks (``None``: on any).

        With ``number_id``: that number if it belongs to the organization and is under its
        concurrent-call limit. Without: the organization's least recently used number that is
        under its limit. Marks it used at ``now``. ``None`` when nothing qualifies (the caller
        tells "not found" from "busy" with ``get_phone_number``).
        """
        ...

    # assistants
    async def insert_assistant(self, assistant: Assistant) -> None: ...
    async def update_assistant(self, assistant: Assistant) -> None: ...
    async def delete_assistant(self, organization_id: str, assistant_id: str) -> bool: ...

    # tool templates
    async def insert_tool_template(self, template: ToolTemplate) -> None: ...
    async def update_tool_template(self, template: ToolTemplate) -> None: ...
    async def delete_tool_template(self, organization_id: str, template_id: str) -> bool: ...

    # analysis templates
    async def insert_analysis_template(self, template: AnalysisTemplate) -> None: ...
    async def update_analysis_template(self, template: AnalysisTemplate) -> None: ...
    async def delete_analysis_template(self, organization_id: str, template_id: str) -> bool: ...

    # provider keys
    async def insert_provider_key(self, key: ProviderKey) -> None:
        """StoreConflict when the organization has a key of that name."""
        ...

    async def update_provider_key(self, key: ProviderKey) -> None: ...
    async def delete_provider_key(self, organization_id: str, key_id: str) -> bool: ...

    # calls
    async def insert_call(self, call: Call) -> Call:
        """Insert and return the call with its store-assigned ``seq``."""
        ...

    async def get_call_for_update(self, call_id: str) -> Call | None: ...
    async def update_call(self, call: Call) -> None: ...
    async def claim_scheduled_call(
        self,
        node_id: str,
        now: datetime,
        skip: Collection[str] = (),
        *,
        organization_id: str | None = None,
    ) -> Call | None:
        """The scheduled call due first at ``now`` (but those in ``skip``; of
        ``organization_id`` when given), locked and owned by ``node_id``."""
        ...

    async def scheduled_waiting(self, organization_id: str) -> ScheduledWaiting:
        """The organization's calls waiting with ``scheduled_at`` (lock the organization
        first to count them for a new one)."""
        ...

    async def add_message(self, message: CallMessage) -> CallMessage: ...
    async def add_event(self, event: CallEvent) -> CallEvent: ...

    # nodes sharing the database (calls/nodes/lease.py)
    async def clock(self) -> datetime:
        """The time leases are measured in: the database server's clock (PostgreSQL), so that
        nodes on several hosts agree; SQLite, whose nodes share one host: this host's."""
        ...

    async def nodes_for_update(self) -> list[NodeLease]:
        """Every node's lease row; no other node joins, leaves or claims calls until the
        transaction ends."""
        ...

    async def put_node(self, lease: NodeLease) -> None:
        """Write the node's lease row (replacing one of the same id: a previous run's event
        streams go with it)."""
        ...

    async def renew_node(self, node_id: str, run: str, until: datetime) -> bool:
        """Extend the lease of this run of the node; ``False`` when its row is gone (another
        node found it expired and took its calls) or belongs to another run."""
        ...

    async def delete_node(self, node_id: str, run: str | None = None) -> bool:
        """Delete the node's lease row (of that run), and the event streams it held."""
        ...

    async def take_unowned_calls(self, node_id: str) -> list[Call]:
        """Make every non-terminal call stored without an owner (before nodes were known)
        the node's; the calls, in ``seq`` order."""
        ...

    async def claim_lost_calls(self, node_id: str, now: datetime) -> list[Call]:
        """Delete the lease rows of other nodes that expired by ``now`` (and the event streams
        they held) and make every non-terminal call whose owner has no lease row the node's:
        the calls it claimed, in ``seq`` order. Each call is claimed by exactly one node,
        however many try at once."""
        ...

    # open event streams of every node (store/sql/streams.py, calls/event_streams.py)
    async def count_event_streams(
        self, organization_id: str, api_key_id: str, now: datetime
    ) -> OpenStreams:
        """The organization's and the key's streams open on nodes whose lease is ahead of
        ``now``; until the transaction ends no other transaction counts or opens the
        organization's streams, on any node."""
        ...

    async def insert_event_stream(self, stream: EventStream) -> None: ...
    async def delete_event_streams(self, stream_ids: Collection[str]) -> None: ...

    # retention (calls/retention.py): one statement over at most ``limit`` rows each; never
    # a live call
    async def delete_calls_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete calls that ended before ``cutoff``, with their messages and events."""
        ...

    async def delete_transcripts_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete messages, then transcript events, of calls that ended before ``cutoff``."""
        ...

    async def clear_analysis_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Blank the summary and analysis of calls that ended before ``cutoff``."""
        ...

    async def delete_finished_deliveries_before(self, cutoff: datetime, limit: int) -> int:
        """Delete webhook deliveries created before ``cutoff`` that were delivered or given
        up (their payloads carry transcripts); pending ones stay."""
        ...

    # idempotency
    async def get_idempotency(self, organization_id: str, key: str) -> IdempotencyRecord | None: ...
    async def put_idempotency(self, record: IdempotencyRecord) -> None: ...
    async def delete_idempotency_before(self, cutoff: datetime) -> int:
        """Delete the records created at or before ``cutoff`` (expired); how many."""
        ...

    # campaigns (store/sql/campaigns.py, calls/campaigns/)
    async def insert_campaign(
        self, campaign: Campaign, contacts: Sequence[CampaignContact]
    ) -> Campaign: ...
    async def insert_contacts(self, contacts: Sequence[CampaignContact]) -> None: ...
    async def get_campaign_for_update(
        self, organization_id: str | None, campaign_id: str
    ) -> Campaign | None: ...
    async def update_campaign_status(self, campaign: Campaign) -> None: ...
    async def claim_contact(self, campaign_id: str, now: datetime) -> CampaignContact | None:
        """The campaign's pending contact due first, locked (skipped by other claimers)."""
        ...

    async def contact_of_call(self, call_id: str) -> CampaignContact | None: ...
    async def update_contact(self, contact: CampaignContact) -> None: ...
    async def end_pending_contacts(self, campaign_id: str, outcome: str, now: datetime) -> int: ...
    async def count_open_contacts(self, campaign_id: str) -> int: ...
    async def is_do_not_call(self, organization_id: str, number: str) -> bool: ...
    async def add_do_not_call(self, organization_id: str, number: str, now: datetime) -> None: ...
    async def delete_do_not_call(self, organization_id: str, number: str) -> bool: ...

    # dial admission (store/sql/dials.py): the queries of calls/outbound/dial_admission.py, whose
    # locks hold until the transaction ends, so nodes sharing the database take turns
    async def trunk_for_update(self, trunk: str) -> Trunk | None:
        """The trunk, its row locked: admissions on it take turns across nodes."""
        ...

    async def lock_organization(self, organization_id: str) -> None:
        """Lock the organization's row: admissions counting its calls take turns."""
        ...

    async def count_active_calls(
        self, by: Literal["trunk", "organization_id", "campaign_id"], value: str
    ) -> int:
        """The calls not yet ended whose ``by`` is ``value``."""
        ...

    async def trunk_dials(
        self, trunk: str, admitted_after: datetime, done_after: datetime
    ) -> list[datetime | None]:
        """When the PBX had the channel of each dial on ``trunk`` admitted after
        ``admitted_after`` and not done by ``done_after`` (``None``: its originate is still on
        its way)."""
        ...

    async def record_trunk_dial(self, trunk: str, now: datetime, forget_before: datetime) -> int:
        """Log a dial admitted on ``trunk`` at ``now`` (forgetting those before
        ``forget_before``): its id for ``dial_done``."""
        ...

    async def dial_done(self, dial_id: int, now: datetime) -> None:
        """The PBX answered the dial's originate (its channel exists, or never will)."""
        ...

    # webhooks: the transaction is the ``OutboxWriter`` of voicedock.domain.webhooks, so an
    # event is enqueued exactly when the state change that caused it commits
    async def insert_webhook_endpoint(self, endpoint: WebhookEndpoint) -> None: ...
    async def delete_webhook_endpoint(self, organization_id: str, endpoint_id: str) -> bool: ...
    async def list_webhook_endpoints(self, organization_id: str) -> list[WebhookEndpoint]:
        """The organization's endpoints, on the transaction's connection (event fan-out)."""
        ...

    async def enqueue(self, endpoint_id: str, event_type: str, payload: bytes, msg_id: str) -> None:
        """Add a delivery due now; the same (endpoint_id, msg_id) again is a no-op."""
        ...


@dataclass(frozen=True, slots=True)
class NodeReply:
    """A stored node command as its sender finds it: ``state`` is "pending" (not taken yet),
    "taken" (being carried out) or "answered" (``reply`` holds the answer)."""

    state: str
    reply: str | None


class NodeMailbox(Protocol):
    """Commands from one node to another through the database (``calls/nodes/command_relay.py``): a
    row per command, and a notification on the recipient's channel (its id) when it is stored
    and on the sender's when it is answered. Only a database several nodes share has one."""

    async def send(self, sender: str, recipient: str, request: str) -> int:
        """Store ``request`` for ``recipient`` and notify it: the command's id."""
        ...

    async def take(self, command_id: int, recipient: str) -> str | None:
        """The request of a pending command of ``recipient``, now taken; ``None`` when it is
        not pending any more (taken already, or its sender gave up)."""
        ...

    async def answer(self, command_id: int, reply: str) -> None:
        """Store the answer and notify the sender."""
        ...

    async def reply(self, command_id: int) -> NodeReply | None:
        """The command as it stands; ``None`` once deleted."""
        ...

    async def drop(self, command_id: int) -> NodeReply | None:
        """Delete the command: as it stood, or ``None`` when it was gone."""
        ...

    async def pending(self, recipient: str) -> list[int]:
        """The ids of ``recipient``'s commands not taken yet, oldest first (after a missed
        notification); deletes commands left behind long ago."""
        ...

    def listen(self, node_id: str) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """The notifications of ``node_id``'s channel, on a connection of their own: "q<id>"
        for a command to it, "a<id>" for an answer to one it sent. The iterator ends when the
        connection is lost (notifications may have been missed: look at ``pending``)."""
        ...


class Store(Protocol):
    """A voicedock database. ``aclose()`` is idempotent."""

    async def migrate(self) -> None: ...
    async def aclose(self) -> None: ...
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    async def get_organization(self, organization_id: str) -> Organization | None: ...
    async def get_organization_by_name(self, name: str) -> Organization | None: ...
    async def find_api_key(self, key_hash: str) -> ApiKey | None: ...
    async def get_api_key(self, organization_id: str | None, key_id: str) -> ApiKey | None:
        """The key with this id, revoked or not; ``organization_id`` None: any organization."""
        ...

    async def list_api_keys(self, organization_id: str) -> list[ApiKey]: ...
    async def find_console_session(self, token_hash: str) -> ConsoleSession | None: ...
    async def metrics_counts(self) -> StoreCounts: ...

    async def list_trunks(self) -> list[Trunk]: ...
    async def get_trunk(self, name: str) -> Trunk | None: ...

    async def get_phone_number(
        self, organization_id: str | None, number_id: str
    ) -> PhoneNumber | None: ...
    async def find_phone_number_by_e164(self, number: str) -> PhoneNumber | None: ...
    async def list_phone_numbers(self, organization_id: str) -> list[PhoneNumber]: ...
    async def count_active_calls(self, number_id: str) -> int: ...

    async def get_assistant(
        self, organization_id: str | None, assistant_id: str
    ) -> Assistant | None: ...
    async def list_assistants(self, organization_id: str) -> list[Assistant]: ...
    async def get_tool_template(
        self, organization_id: str, template_id: str
    ) -> ToolTemplate | None: ...
    async def list_tool_templates(self, organization_id: str) -> list[ToolTemplate]: ...
    async def get_analysis_template(
        self, organization_id: str, template_id: str
    ) -> AnalysisTemplate | None: ...
    async def list_analysis_templates(self, organization_id: str) -> list[AnalysisTemplate]: ...
    async def get_provider_key(
        self, organization_id: str, key_id: str | None = None, *, name: str | None = None
    ) -> ProviderKey | None:
        """By id, or by ``name`` (the organization's names are unique)."""
        ...

    async def list_provider_keys(self, organization_id: str) -> list[ProviderKey]: ...

    async def get_call(self, organization_id: str | None, call_id: str) -> Call | None:
        """``organization_id=None`` is for the engine (PBX events carry no tenant)."""
        ...

    async def list_calls(self, query: CallQuery) -> CallPage: ...
    async def usage(self, query: UsageQuery) -> UsageRows:
        """Calls and speech use aggregated by group (``store/sql/usage.py``)."""
        ...

    async def list_active_calls(self, owner_node: str | None = None) -> list[Call]:
        """Every non-terminal call (of the node ``owner_node`` when given)."""
        ...

    async def scheduled_due_organizations(self, now: datetime) -> list[str]:
        """The organizations with a scheduled call due at ``now``, the one whose call is due
        first first (the dialer takes them in turn)."""
        ...

    async def list_nodes(self) -> list[NodeLease]:
        """The lease rows of the nodes sharing this database."""
        ...

    async def list_messages(self, call_id: str) -> list[CallMessage]: ...
    async def list_events(self, call_id: str, after_seq: int = 0) -> list[CallEvent]: ...

    async def get_campaign(
        self, organization_id: str | None, campaign_id: str
    ) -> Campaign | None: ...
    async def list_campaigns(
        self, organization_id: str, limit: int, offset: int
    ) -> tuple[list[Campaign], int]: ...
    async def list_running_campaigns(self) -> list[Campaign]: ...
    async def campaign_progress(self, campaign_id: str) -> CampaignProgress: ...
    async def list_campaign_contacts(
        self, campaign_id: str, state: ContactState | None, limit: int, offset: int
    ) -> tuple[list[CampaignContact], int]: ...
    async def list_do_not_call(self, organization_id: str) -> list[str]: ...

    async def list_webhook_endpoints(
        self, organization_id: str, assistant_id: str | None = None, event_type: str | None = None
    ) -> list[WebhookEndpoint]:
        """The organization's endpoints; with ``event_type``, only the enabled ones that want
        that event of that assistant (the fan-out list for ``enqueue_event``)."""
        ...

    def outbox(self) -> Outbox:
        """The delivery worker's view of the webhook outbox in this database."""
        ...

    def mailbox(self) -> NodeMailbox | None:
        """Commands between the nodes sharing this database; ``None`` where one node serves
        it (SQLite)."""
        ...


def json_default(value: Any) -> Any:
    """``json.dumps`` default for the types the store serializes inside JSON columns."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


__all__ = [
    "CallPage",
    "CallQuery",
    "NodeMailbox",
    "NodeReply",
    "ScheduledWaiting",
    "Store",
    "Transaction",
    "json_default",
]
