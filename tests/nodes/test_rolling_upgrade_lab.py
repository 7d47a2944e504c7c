"""A rolling upgrade on the lab Asterisk and PostgreSQL, as an operator does it (docs/upgrades.md):
two nodes of the previous version serve calls and a campaign; node a is drained with SIGTERM
and started again on this version (which migrates the database while node b, of the previous
version, serves on it), then node b the same.

The previous version is this repository's commit before its newest migration
(``nodes/previous_version.py``), its nodes run from that source tree: one migration short of
the schema this version migrates to, so for a while an old node runs on the migrated schema
beside a new one — each lease row says which (``nodes.schema_version``).

Calls all along (``soak/harness.py``): outbound ones to the lab's talking party (``say`` and
``inject-context`` through either node, ended with ``end-call`` or a blind transfer), some to
the party that hangs up by itself, inbound callers from the lab's carrier, and a campaign
dialing the party that hangs up, on both nodes. Checks: zero calls ended otherwise than asked,
zero stuck, one end-of-call report per call, nothing left at the PBX, each campaign contact
dialed once (or cancelled before any), each drained node exited 0, calls served by each of the
four node processes, no error-level line or traceback in any node's log (the previous
version's may show defects this version fixed: ``FIXED_SINCE``).
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from lab_availability import unavailable
from nodes.previous_version import NoPreviousVersion, Version, previous_version
from pg_server import fresh_database
from soak.harness import Plan, Run, Soak
from voicedock.store.migrate import schema_version
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres, pytest.mark.e2e]

PLAN = Plan(
    calls_at_once=8,
    nodes=2,
    min_call_s=8,
    max_call_s=14,
    commands_per_minute=6,
    transfer_share=0.15,
    inbound_share=0.25,
    sample_every=2.0,
    settle_s=60,
    roll_at_s=25,  # both nodes serving calls and the campaign by then
    # Each restarted node serves 10 s before the next goes, and the calls go on 10 s after the
    # last: new calls start on both all along (8 at once of 8-14 s), each node of this version
    # takes a dozen or more (docs/testing.md).
    roll_serve_s=10,
    after_roll_s=10,
    drain_within_s=60,  # the longest call (14 s), a transfer's agent (17 s), and some
    campaign_at_once=6,
)


def previous(tmp_path: Path) -> Version:
    try:
        return previous_version(tmp_path / "previous")
    except NoPreviousVersion as exc:
        unavailable("the previous version", f"{exc} (a clone with its history is needed)")


async def schema_versions(dsn: str) -> tuple[int, dict[str, int | None]]:
    """The database's newest migration, and each node's (its code's) as its lease says."""
    conn = await asyncpg.connect(dsn)
    try:
        newest = await conn.fetchval("SELECT max(version) FROM schema_migrations")
        columns = {
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'nodes'"
            )
        }
        select = (
            "id, schema_version" if "schema_version" in columns else "id, NULL AS schema_version"
        )
        rows = await conn.fetch(f"SELECT {select} FROM nodes")
    finally:
        await conn.close()
    return newest, {r["id"]: r["schema_version"] for r in rows}


LEASE_NAMES_SCHEMA_VERSION = 23  # migrations/*/023_node_schema_versions.sql

# Defects of the previous version that this version fixed, which its node processes may still
# show (kinds of log line, as the soak counts them), and where the fix is.
FIXED_SINCE = {
    "ERROR asyncio Resetting connection with an active transaction": (
        "a task cancelled at exit while its transaction began or rolled back gave its "
        "connection back to the pool with the transaction open (store/postgres/store.py)"
    ),
}


class Upgrade(Soak):
    """The soak with its rolling restart, noting the database's newest migration and each
    node's before the roll and once each node serves again."""

    seen: dict[str, tuple[int, dict[str, int | None]]]

    async def roll(self) -> None:
        self.seen = {"before": await schema_versions(self.database)}
        await super().roll()

    async def restarted(self, run: Run) -> None:
        self.seen[run.label] = await schema_versions(self.database)

    def tolerated(self, run: Run) -> tuple[str, ...]:
        return () if run.source == "this tree" else tuple(FIXED_SINCE)


@pytest.mark.timeout(420)
async def test_a_rolling_upgrade_with_a_campaign_running_loses_no_call(
    lab: LabAsterisk, postgres_server: str, tmp_path: Path
) -> None:
    version = previous(tmp_path)
    assert version.newest_migration < schema_version(), "the previous version has every migration"
    database = await fresh_database(postgres_server)
    soak = Upgrade(PLAN, lab, database, tmp_path, previous=(version.tree, version.commit[:12]))
    result = await soak.run()

    fixed = sum(sum(kinds.values()) for kinds in result.log_tolerated.values())
    print(
        f"rolling upgrade from {version.commit[:12]}: {result.total_calls} calls, served by "
        f"{dict(result.served)}, drained in "
        f"{ {r.label: round(r.drained_s or 0, 1) for r in result.runs if r.stopped} } s, "
        f"ends {dict(result.end_reasons)}, contacts {dict(result.contacts)}, the previous "
        f"version's fixed defects seen {fixed}"
    )
    result.assert_nothing_lost()
    assert result.webhooks["end-of-call-report"] == result.total_calls
    runs = {r.label: r for r in result.runs}
    assert [(r.label, r.source) for r in result.runs] == [
        ("a", version.commit[:12]),
        ("b", version.commit[:12]),
        ("a#2", "this tree"),
        ("b#2", "this tree"),
    ]
    for label in ("a", "b"):  # drained: SIGTERM, its calls finished, exit 0
        assert runs[label].exit_code == 0
        assert runs[label].drained_s is not None
        assert runs[label].drained_s < PLAN.drain_within_s
    assert all(result.served[label] > 0 for label in runs), result.served
    kinds = {kind.split(":")[0] for kind in result.end_reasons}
    assert {"talker", "leaver", "inbound", "campaign"} <= kinds, result.end_reasons
    assert result.commands["say 200"] > 0, result.commands
    assert result.contacts["done answered 1"] > 0, result.contacts
    # Node b of the previous version served on the schema node a of this version migrated.
    # A node's lease names its code's newest migration from the version that added the column.
    new, old = schema_version(), version.newest_migration
    leased = old if old >= LEASE_NAMES_SCHEMA_VERSION else None
    assert soak.seen == {
        "before": (old, {"a": leased, "b": leased}),
        "a#2": (new, {"a": new, "b": leased}),
        "b#2": (new, {"a": new, "b": new}),
    }
