"""Campaigns and their contacts in SQL (both backends).

``SqlCampaignWrites`` are the writes a ``Transaction`` offers, ``SqlCampaignReads`` the reads
of a ``Store``. Contacts are claimed one at a time with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
(nodes dialing one campaign take different contacts without waiting); SQLite's single writer
serializes claims. The dial limits every outbound call passes are
``calls/outbound/dial_pacing.py``'s, on the queries of ``dials_sql.py``.
"""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from voicedock.domain.campaigns import (
    Campaign,
    CampaignContact,
    CampaignProgress,
    CampaignStatus,
    ContactState,
)
from voicedock.errors import StoreError
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.rows import Table, integer

CAMPAIGNS = Table("campaigns", Campaign, generated=frozenset({"seq"}))

CAMPAIGN_CONTACTS = Table("campaign_contacts", CampaignContact, generated=frozenset({"seq"}))


class SqlCampaignWrites(TransactionPart):
    """Campaign writes inside an open transaction."""

    async def insert_campaign(
        self, campaign: Campaign, contacts: Sequence[CampaignContact]
    ) -> Campaign:
        row = await self._conn.fetchrow(
            CAMPAIGNS.insert_sql(returning="seq"),
            *CAMPAIGNS.encode(campaign, self._dialect, CAMPAIGNS.insert_columns),
        )
        assert row is not None  # RETURNING always yields the inserted row
        campaign.seq = integer(row["seq"])
        await self.insert_contacts(contacts)
        return campaign

    async def insert_contacts(self, contacts: Sequence[CampaignContact]) -> None:
        for contact in contacts:
            await self._conn.execute(
                CAMPAIGN_CONTACTS.insert_sql(),
                *CAMPAIGN_CONTACTS.encode(contact, self._dialect, CAMPAIGN_CONTACTS.insert_columns),
            )

    async def get_campaign_for_update(
        self, organization_id: str | None, campaign_id: str
    ) -> Campaign | None:
        return await self._by_id(CAMPAIGNS, organization_id, campaign_id, locked=True)

    async def get_campaign(self, organization_id: str | None, campaign_id: str) -> Campaign | None:
        return await self._by_id(CAMPAIGNS, organization_id, campaign_id)

    async def update_campaign_status(self, campaign: Campaign) -> None:
        changed = await self._conn.execute(
            "UPDATE campaigns SET status = ?, updated_at = ?, started_at = ?, finished_at = ?"
            " WHERE id = ?",
            str(campaign.status),
            self._dialect.dt(campaign.updated_at),
            self._dialect.dt(campaign.started_at),
            self._dialect.dt(campaign.finished_at),
            campaign.id,
        )
        if changed != 1:
            raise StoreError("campaign to update does not exist")

    async def claim_contact(self, campaign_id: str, now: datetime) -> CampaignContact | None:
        """The campaign's pending contact due first at ``now``, locked until the transaction
        ends (on PostgreSQL, a contact another node holds is skipped, not waited for)."""
        skip = self._dialect.lock_suffix + (" SKIP LOCKED" if self._dialect.lock_suffix else "")
        row = await self._conn.fetchrow(
            "SELECT * FROM campaign_contacts WHERE campaign_id = ? AND state = ?"
            " AND next_attempt_at <= ? ORDER BY next_attempt_at, seq LIMIT 1" + skip,
            campaign_id,
            str(ContactState.PENDING),
            self._dialect.dt(now),
        )
        return None if row is None else CAMPAIGN_CONTACTS.decode(row, self._dialect)

    async def contact_of_call(self, call_id: str) -> CampaignContact | None:
        """The contact whose call this is, locked until the transaction ends."""
        return await self._by_key(CAMPAIGN_CONTACTS, "call_id", call_id, locked=True)

    async def update_contact(self, contact: CampaignContact) -> None:
        columns = ("state", "outcome", "attempts", "next_attempt_at", "call_id", "updated_at")
        assignments = ", ".join(f"{c} = ?" for c in columns)
        changed = await self._conn.execute(
            f"UPDATE campaign_contacts SET {assignments} WHERE id = ?",
            *CAMPAIGN_CONTACTS.encode(contact, self._dialect, columns),
            contact.id,
        )
        if changed != 1:
            raise StoreError("contact to update does not exist")

    async def end_pending_contacts(self, campaign_id: str, outcome: str, now: datetime) -> int:
        """Every pending contact of the campaign is done with ``outcome``; how many."""
        return await self._conn.execute(
            "UPDATE campaign_contacts SET state = ?, outcome = ?, updated_at = ?"
            " WHERE campaign_id = ? AND state = ?",
            str(ContactState.DONE),
            outcome,
            self._dialect.dt(now),
            campaign_id,
            str(ContactState.PENDING),
        )

    async def count_open_contacts(self, campaign_id: str) -> int:
        """The campaign's contacts not done yet."""
        row = await self._conn.fetchrow(
            "SELECT count(*) AS n FROM campaign_contacts WHERE campaign_id = ? AND state <> ?",
            campaign_id,
            str(ContactState.DONE),
        )
        return 0 if row is None else integer(row["n"])


class SqlCampaignReads(StorePart):
    """Campaign lookups."""

    async def get_campaign(self, organization_id: str | None, campaign_id: str) -> Campaign | None:
        return await self._by_id(CAMPAIGNS, organization_id, campaign_id)

    async def list_campaigns(
        self, organization_id: str, limit: int, offset: int
    ) -> tuple[list[Campaign], int]:
        """The organization's campaigns, newest first, and how many it has."""
        total = await self._reader.fetchrow(
            "SELECT count(*) AS n FROM campaigns WHERE organization_id = ?", organization_id
        )
        rows = await self._reader.fetch(
            "SELECT * FROM campaigns WHERE organization_id = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
            organization_id,
            max(limit, 0),
            max(offset, 0),
        )
        count = 0 if total is None else integer(total["n"])
        return [CAMPAIGNS.decode(r, self._dialect) for r in rows], count

    async def list_running_campaigns(self) -> list[Campaign]:
        """Every running campaign of every organization, oldest first (the dialers' work)."""
        rows = await self._reader.fetch(
            "SELECT * FROM campaigns WHERE status = ? ORDER BY seq", str(CampaignStatus.RUNNING)
        )
        return [CAMPAIGNS.decode(r, self._dialect) for r in rows]

    async def campaign_progress(self, campaign_id: str) -> CampaignProgress:
        rows = await self._reader.fetch(
            "SELECT state, outcome, count(*) AS n FROM campaign_contacts WHERE campaign_id = ?"
            " GROUP BY state, outcome",
            campaign_id,
        )
        by_state: dict[str, int] = {str(s): 0 for s in ContactState}
        by_outcome: dict[str, int] = {}
        for r in rows:
            n = integer(r["n"])
            by_state[str(r["state"])] = by_state.get(str(r["state"]), 0) + n
            if r["state"] == str(ContactState.DONE) and r["outcome"] is not None:
                by_outcome[str(r["outcome"])] = by_outcome.get(str(r["outcome"]), 0) + n
        return CampaignProgress(sum(by_state.values()), by_state, by_outcome)

    async def list_campaign_contacts(
        self, campaign_id: str, state: ContactState | None, limit: int, offset: int
    ) -> tuple[list[CampaignContact], int]:
        where, args = "campaign_id = ?", [campaign_id]
        if state is not None:
            where += " AND state = ?"
            args.append(str(state))
        total = await self._reader.fetchrow(
            f"SELECT count(*) AS n FROM campaign_contacts WHERE {where}", *args
        )
        rows = await self._reader.fetch(
            f"SELECT * FROM campaign_contacts WHERE {where} ORDER BY seq LIMIT ? OFFSET ?",
            *args,
            max(limit, 0),
            max(offset, 0),
        )
        count = 0 if total is None else integer(total["n"])
        return [CAMPAIGN_CONTACTS.decode(r, self._dialect) for r in rows], count


__all__ = ["CAMPAIGNS", "CAMPAIGN_CONTACTS", "SqlCampaignReads", "SqlCampaignWrites"]
