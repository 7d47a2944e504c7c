"""``SqlTransaction``: the store's ``Transaction`` in the SQL both backends share, one part per
concept (each in its module of ``store/sql/``).

Statements use ``?`` placeholders; the PostgreSQL connection adapter rewrites them to ``$n``.
Each backend supplies a ``Conn`` (driver errors already translated to ``StoreError``), a
``Dialect`` and its ``Locks``, the only behavioural hook: SQLite needs none because all of its
writes go through one connection in ``BEGIN IMMEDIATE`` transactions.
"""

from __future__ import annotations

from voicedock.store.sql.assistants import SqlAssistantWrites
from voicedock.store.sql.audit import SqlAuditWrites
from voicedock.store.sql.billing import SqlBillingWrites
from voicedock.store.sql.calls import SqlCallWrites
from voicedock.store.sql.campaigns import SqlCampaignWrites
from voicedock.store.sql.dials import SqlDialWrites
from voicedock.store.sql.do_not_call import SqlDoNotCallWrites
from voicedock.store.sql.domains import SqlDomainWrites
from voicedock.store.sql.idempotency import SqlIdempotencyWrites
from voicedock.store.sql.knowledge import SqlKnowledgeWrites
from voicedock.store.sql.nodes import SqlNodeWrites
from voicedock.store.sql.numbers import SqlNumberWrites
from voicedock.store.sql.organizations import SqlOrganizationWrites
from voicedock.store.sql.outbox import SqlOutboxWrites
from voicedock.store.sql.provider_keys import SqlProviderKeyWrites
from voicedock.store.sql.retention import SqlRetentionWrites
from voicedock.store.sql.scheduled_calls import SqlScheduledCallWrites
from voicedock.store.sql.squads import SqlSquadWrites
from voicedock.store.sql.streams import SqlStreamWrites
from voicedock.store.sql.suites import SqlSuiteWrites


class SqlTransaction(
    SqlOrganizationWrites,
    SqlNumberWrites,
    SqlAssistantWrites,
    SqlKnowledgeWrites,
    SqlProviderKeyWrites,
    SqlCallWrites,
    SqlScheduledCallWrites,
    SqlNodeWrites,
    SqlStreamWrites,
    SqlRetentionWrites,
    SqlIdempotencyWrites,
    SqlCampaignWrites,
    SqlDoNotCallWrites,
    SqlDialWrites,
    SqlOutboxWrites,
    SqlSuiteWrites,
    SqlSquadWrites,
    SqlDomainWrites,
    SqlAuditWrites,
    SqlBillingWrites,
):
    """``Transaction`` over one connection that is inside an open database transaction."""


__all__ = ["SqlTransaction"]
