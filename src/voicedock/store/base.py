"""The repository interface, implemented by SQLite (embedded default) and PostgreSQL.

Every write goes through ``Store.transaction()``: what one request or one PBX event changes
(a call row, its event, the idempotency record, a webhook outbox row) commits together or not
at all. Reads that need no consistency with a write use the store's own methods.

``Transaction`` and ``Store`` are composed of one protocol per concept (``store/protocols/``:
calls, scheduled calls, campaigns, numbers, assistants, organizations, provider keys, the
webhook outbox, nodes, event streams, squads and the versions of squads and tool templates,
dial admission, idempotency, retention, usage, metrics, the audit trail);
a function that needs one concept may ask for that protocol alone.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from voicedock.store.pages import OldestFirstQuery, RecordPage
from voicedock.store.protocols.assistants import AssistantReads, AssistantWrites
from voicedock.store.protocols.audit import AuditPage, AuditQuery, AuditReads, AuditWrites
from voicedock.store.protocols.billing import BillingReads, BillingWrites
from voicedock.store.protocols.calls import (
    CallCursor,
    CallPage,
    CallQuery,
    CallReads,
    CallWrites,
    TimeRange,
)
from voicedock.store.protocols.campaigns import CampaignReads, CampaignWrites
from voicedock.store.protocols.dials import DialWrites
from voicedock.store.protocols.do_not_call import DoNotCallLookups, DoNotCallReads, DoNotCallWrites
from voicedock.store.protocols.domains import DomainReads, DomainWrites
from voicedock.store.protocols.idempotency import IdempotencyWrites
from voicedock.store.protocols.knowledge import KnowledgeReads, KnowledgeWrites
from voicedock.store.protocols.metrics import MetricsReads, StoreCounts
from voicedock.store.protocols.nodes import NodeMailbox, NodeReads, NodeReply, NodeWrites
from voicedock.store.protocols.numbers import (
    NumberChoice,
    NumberLookups,
    NumberReads,
    NumberWrites,
)
from voicedock.store.protocols.organizations import OrganizationReads, OrganizationWrites
from voicedock.store.protocols.outbox import OutboxReads, OutboxWrites
from voicedock.store.protocols.provider_keys import ProviderKeyReads, ProviderKeyWrites
from voicedock.store.protocols.record_versions import RecordVersionReads
from voicedock.store.protocols.retention import RetentionWrites
from voicedock.store.protocols.scheduled_calls import (
    ScheduledCallReads,
    ScheduledCallWrites,
    ScheduledChoice,
    ScheduledWaiting,
)
from voicedock.store.protocols.squads import SquadReads, SquadWrites
from voicedock.store.protocols.streams import StreamWrites
from voicedock.store.protocols.suites import SuiteReads, SuiteWrites
from voicedock.store.protocols.usage import (
    CallUsageRow,
    CostUsageRow,
    EvaluationUsageRow,
    MemberUsageRow,
    SpeechUsageRow,
    UsageQuery,
    UsageReads,
    UsageRows,
)


class Transaction(
    OrganizationWrites,
    NumberWrites,
    AssistantWrites,
    KnowledgeWrites,
    ProviderKeyWrites,
    CallWrites,
    ScheduledCallWrites,
    NodeWrites,
    StreamWrites,
    RetentionWrites,
    IdempotencyWrites,
    CampaignWrites,
    DoNotCallWrites,
    DialWrites,
    OutboxWrites,
    SuiteWrites,
    SquadWrites,
    DomainWrites,
    AuditWrites,
    BillingWrites,
    Protocol,
):
    """Writes (and reads that must see them) inside one database transaction."""


class Store(
    OrganizationReads,
    NumberReads,
    AssistantReads,
    KnowledgeReads,
    ProviderKeyReads,
    CallReads,
    ScheduledCallReads,
    NodeReads,
    CampaignReads,
    DoNotCallReads,
    OutboxReads,
    UsageReads,
    MetricsReads,
    SuiteReads,
    SquadReads,
    RecordVersionReads,
    DomainReads,
    AuditReads,
    BillingReads,
    Protocol,
):
    """A voicedock database. ``aclose()`` is idempotent."""

    async def migrate(self) -> None: ...
    async def aclose(self) -> None: ...
    def transaction(self, *, brief: bool = False) -> AbstractAsyncContextManager[Transaction]:
        """One write transaction. ``brief``: it is a few statements on rows found by key (a
        call's event, a transcript message), which the embedded database runs on the event loop
        instead of handing each to its writer thread (store/sqlite.py); PostgreSQL's are
        network round trips either way."""
        ...


def json_default(value: object) -> str:
    """``json.dumps`` default for the types the store serializes inside JSON columns."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


__all__ = [
    "AuditPage",
    "AuditQuery",
    "CallCursor",
    "CallPage",
    "CallQuery",
    "CallUsageRow",
    "CostUsageRow",
    "DoNotCallLookups",
    "EvaluationUsageRow",
    "MemberUsageRow",
    "NodeMailbox",
    "NodeReply",
    "NumberChoice",
    "NumberLookups",
    "OldestFirstQuery",
    "RecordPage",
    "ScheduledChoice",
    "ScheduledWaiting",
    "SpeechUsageRow",
    "Store",
    "StoreCounts",
    "TimeRange",
    "Transaction",
    "UsageQuery",
    "UsageRows",
    "json_default",
]
