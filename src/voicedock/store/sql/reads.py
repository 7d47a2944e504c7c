"""``SqlReads``: the read half of the store's ``Store`` in the SQL both backends share, one part
per concept (each in its module of ``store/sql/``); each backend's store is one, with its
``_reader`` (a ``Conn`` that runs each statement outside any write) and ``Dialect``."""

from __future__ import annotations

from voicedock.store.sql.assistants import SqlAssistantReads
from voicedock.store.sql.audit import SqlAuditReads
from voicedock.store.sql.billing import SqlBillingReads
from voicedock.store.sql.calls import SqlCallReads
from voicedock.store.sql.campaigns import SqlCampaignReads
from voicedock.store.sql.do_not_call import SqlDoNotCallReads
from voicedock.store.sql.domains import SqlDomainReads
from voicedock.store.sql.knowledge import SqlKnowledgeReads
from voicedock.store.sql.metrics import SqlMetricsReads
from voicedock.store.sql.nodes import SqlNodeReads
from voicedock.store.sql.numbers import SqlNumberReads
from voicedock.store.sql.organizations import SqlOrganizationReads
from voicedock.store.sql.outbox import SqlOutboxReads
from voicedock.store.sql.provider_keys import SqlProviderKeyReads
from voicedock.store.sql.record_versions import SqlRecordVersionReads
from voicedock.store.sql.scheduled_calls import SqlScheduledCallReads
from voicedock.store.sql.squads import SqlSquadReads
from voicedock.store.sql.suites import SqlSuiteReads
from voicedock.store.sql.usage import SqlUsageReads


class SqlReads(
    SqlOrganizationReads,
    SqlNumberReads,
    SqlAssistantReads,
    SqlKnowledgeReads,
    SqlProviderKeyReads,
    SqlCallReads,
    SqlScheduledCallReads,
    SqlNodeReads,
    SqlCampaignReads,
    SqlDoNotCallReads,
    SqlOutboxReads,
    SqlUsageReads,
    SqlMetricsReads,
    SqlSuiteReads,
    SqlSquadReads,
    SqlRecordVersionReads,
    SqlDomainReads,
    SqlAuditReads,
    SqlBillingReads,
):
    """The read half of ``Store``; ``_reader`` runs each statement outside any write."""


__all__ = ["SqlReads"]
