"""How long call records and transcripts are kept (``[retention]``, off by default).

``transcript_days``: the transcript of a call that ended longer ago (its messages and its
``transcript`` events), its summary and its analysis are deleted; the record stays, with its
status, numbers and timings. ``call_days``: the whole record goes (its messages and events
with it) and ``GET /calls/{id}`` answers 404. A live call is never touched, however old.
Webhook deliveries sent (or given up) before the earlier of the two go too: their payloads
carry transcripts and numbers; pending ones stay until delivered. ``audit_days`` (365 unless
set; 0: forever): audit events older than that are deleted. ``test_run_days`` (90 unless set):
test suites' finished runs asked for longer ago than that are deleted (how many each
organization keeps is bounded when a run ends: ``calls/rehearsal/runs.py``).

``apply_retention`` runs one pass; the service runs it hourly beside the recordings sweep
(``retain_periodically``). Each step is one SQL statement over at most ``BATCH`` rows, repeated
until nothing older is left, so a pass never holds a long transaction and several nodes
sharing one PostgreSQL database may run it at the same time: a row one node deleted is simply
not there for the other. Recording files follow ``[recordings] retention_days``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from voicedock.aio import every
from voicedock.config import RetentionSettings
from voicedock.domain.records import utcnow
from voicedock.errors import StoreError
from voicedock.store import Store, Transaction

log = logging.getLogger("voicedock.calls")

PASS_INTERVAL_S = 3600.0  # hourly, as the recordings sweep (``calls/recordings.py``)

BATCH = 500  # rows per statement


@dataclass(frozen=True, slots=True)
class RetentionPass:
    """What one pass removed: call records, transcript rows, analyses blanked, webhook
    deliveries."""

    calls: int = 0
    transcript_rows: int = 0
    analyses: int = 0
    deliveries: int = 0
    audit_events: int = 0
    test_runs: int = 0


async def _drain(
    store: Store, statement: Callable[[Transaction], Awaitable[int]], limit: int
) -> int:
    """Run ``statement`` in its own transaction until it changes less than ``limit`` rows."""
    total = 0
    while True:
        async with store.transaction() as tx:
            changed = await statement(tx)
        total += changed
        if changed < limit:
            return total


async def apply_retention(
    store: Store, settings: RetentionSettings, now: datetime | None = None, batch: int = BATCH
) -> RetentionPass:
    """One retention pass as of ``now`` (default: this host's clock)."""
    now = utcnow() if now is None else now
    transcript_rows = analyses = calls = 0
    if settings.transcript_days > 0:
        cutoff = now - timedelta(days=settings.transcript_days)
        transcript_rows = await _drain(
            store, lambda tx: tx.delete_transcripts_ended_before(cutoff, batch), batch
        )
        analyses = await _drain(
            store, lambda tx: tx.clear_analysis_ended_before(cutoff, batch), batch
        )
    if settings.call_days > 0:
        cutoff = now - timedelta(days=settings.call_days)
        calls = await _drain(store, lambda tx: tx.delete_calls_ended_before(cutoff, batch), batch)
    days = [d for d in (settings.transcript_days, settings.call_days) if d > 0]
    deliveries = 0
    if days:
        sent_before = now - timedelta(days=min(days))
        deliveries = await _drain(
            store, lambda tx: tx.delete_finished_deliveries_before(sent_before, batch), batch
        )
    audit_events = 0
    if settings.audit_days > 0:
        cutoff = now - timedelta(days=settings.audit_days)
        audit_events = await _drain(
            store, lambda tx: tx.delete_audit_events_before(cutoff, batch), batch
        )
    test_runs = 0
    if settings.test_run_days > 0:
        cutoff = now - timedelta(days=settings.test_run_days)
        test_runs = await _drain(
            store, lambda tx: tx.delete_finished_suite_runs_before(cutoff, batch), batch
        )
    done = RetentionPass(calls, transcript_rows, analyses, deliveries, audit_events, test_runs)
    if calls or transcript_rows or analyses or deliveries or audit_events or test_runs:
        log.info(
            "retention: %d call records deleted, %d transcript rows deleted, %d analyses "
            "blanked, %d webhook deliveries deleted, %d audit events deleted, %d test runs "
            "deleted",
            calls,
            transcript_rows,
            analyses,
            deliveries,
            audit_events,
            test_runs,
        )
    return done


async def retain_periodically(
    store: Store, settings: RetentionSettings, interval: float = PASS_INTERVAL_S
) -> None:
    """``apply_retention`` now and every ``interval`` seconds, until cancelled; a pass the
    database refuses is logged and tried again at the next interval."""

    async def step() -> None:
        try:
            await apply_retention(store, settings)
        except StoreError as exc:
            log.warning("retention pass failed, trying again in %.0f s: %s", interval, exc)

    await every(interval, step)
