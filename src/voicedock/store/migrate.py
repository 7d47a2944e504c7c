"""Numbered SQL migrations shipped as package data, and what a node may do with a database
migrated further than it knows (docs/upgrades.md).

``migrations/<dialect>/NNN_name.sql`` files are applied in version order, each recorded in
``schema_migrations``; the backends apply the pending ones under a lock (SQLite: in one
transaction; PostgreSQL: each in a transaction of its own, and one that builds indexes
``CONCURRENTLY`` outside any, statement by statement), so ``migrate()`` is idempotent and safe
when several nodes start at once.

Migrations are written expand-then-contract (tests/store/test_migration_rule.py checks every
file), so that a node of the previous version runs on the schema a newer node migrated, for the
length of a rolling upgrade:

* a node meeting migrations newer than its own runs on the database and migrates nothing (it
  never runs a migration it does not have); ``pending`` logs it;
* a database whose migrations differ from this version's under the same number, or lack one of
  them below its newest, is refused (``SchemaMismatch``): the histories diverged;
* a contract step — a migration whose first lines say ``-- contract: unused since NNN`` — removes
  or changes what the code of versions before migration NNN still uses. It is applied only while
  every live node's code knows migration NNN (``check_contract``: each node records the newest
  migration it knows in its lease row, ``nodes.schema_version``), and it is recorded with NNN,
  so that a node of an older version refuses the database afterwards (``check_floor``).
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

from voicedock.store.errors import SchemaMismatch
from voicedock.store.sql.conn import Row, SqlValue
from voicedock.store.sql.rows import integer, text

log = logging.getLogger("voicedock.store")

_FILE_NAME = re.compile(r"^(\d+)_([A-Za-z0-9_]+)\.sql$")
# The contract marker, among the comment lines that open a migration.
_CONTRACT = re.compile(r"^--\s*contract:\s*unused since (\d+)\b", re.IGNORECASE)
# A PostgreSQL index built (or dropped) without locking out writes: no transaction may hold it.
_CONCURRENTLY = re.compile(r"\bINDEX\s+CONCURRENTLY\b", re.IGNORECASE)
_CONCURRENT_INDEX = re.compile(
    r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)",
    re.IGNORECASE,
)

CREATE_SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)
# Nodes record the newest migration their code knows (``nodes.schema_version``) from this one
# on; a live node without it runs a version from before it, which knows at most the one before.
NODE_SCHEMA_RECORDED = 23


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def contract_after(self) -> int | None:
        """NNN of a contract step's ``-- contract: unused since NNN`` (None: an expand step)."""
        for line in self.sql.splitlines():
            stripped = line.strip()
            if not stripped:
                continue
            if not stripped.startswith("--"):
                return None  # the header ended
            if match := _CONTRACT.match(stripped):
                return int(match.group(1))
        return None

    @property
    def statements(self) -> list[str]:
        """Its statements, in order (``split_statements``)."""
        return split_statements(self.sql)

    @property
    def concurrent(self) -> bool:
        """It builds or drops indexes ``CONCURRENTLY`` (PostgreSQL): run outside a
        transaction, one statement at a time."""
        return bool(_CONCURRENTLY.search(_code(self.sql)))

    @property
    def concurrent_indexes(self) -> list[str]:
        """The indexes it builds ``CONCURRENTLY``."""
        return _CONCURRENT_INDEX.findall(_code(self.sql))


@dataclass(frozen=True, slots=True)
class Applied:
    """A row of ``schema_migrations``: a migration the database has."""

    version: int
    name: str
    contract_after: int | None = None

    @classmethod
    def rows(cls, rows: Iterable[Row]) -> list[Applied]:
        """``schema_migrations`` as either backend reads it (no ``contract_after`` column
        before the first contract step)."""
        return [
            cls(integer(r["version"]), text(r["name"]), _optional(r.get("contract_after")))
            for r in rows
        ]


@dataclass(frozen=True, slots=True)
class LiveNode:
    """A node whose lease is alive, and the newest migration its code knows."""

    id: str
    host: str
    schema_version: int | None  # None: a version from before nodes recorded it

    @classmethod
    def rows(cls, rows: Iterable[Row]) -> list[LiveNode]:
        """The live nodes' rows of ``nodes`` as either backend reads them (no
        ``schema_version`` column before migration ``NODE_SCHEMA_RECORDED``)."""
        return [
            cls(text(r["id"]), text(r["host"]), _optional(r.get("schema_version"))) for r in rows
        ]

    @property
    def knows(self) -> int:
        if self.schema_version is None:
            return NODE_SCHEMA_RECORDED - 1
        return self.schema_version


def _optional(value: SqlValue) -> int | None:
    """An integer column that may be NULL (or absent: ``None``)."""
    return None if value is None else integer(value)


def load_migrations(dialect: str) -> list[Migration]:
    """The migrations of ``dialect`` ("sqlite" or "postgres"), by ascending version."""
    folder = resources.files("voicedock.store").joinpath("migrations", dialect)
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two {dialect} migrations share version {version}")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


@functools.cache
def schema_version() -> int:
    """The newest migration this version knows (both dialects ship the same numbers)."""
    return load_migrations("postgres")[-1].version


def pending(known: Sequence[Migration], rows: Iterable[Row]) -> list[Migration]:
    """The migrations of ``known`` to apply to a database whose ``schema_migrations`` holds
    ``rows`` (as the backend read them), in order.

    ``SchemaMismatch`` when the database's history is not this version's (a migration of the
    same number under another name, or one of this version's missing below the database's
    newest), or when it had a contract step this version's code predates (``check_floor``).
    Migrations newer than this version's are left alone, and said once in the log."""
    applied = Applied.rows(rows)
    have = {a.version: a for a in applied}
    newest_known = known[-1].version if known else 0
    for migration in known:
        found = have.get(migration.version)
        if found is not None and found.name != migration.name:
            raise SchemaMismatch(
                f"the database's migration {migration.version} is {found.name!r}, this "
                f"version's is {migration.name!r}: they were migrated by diverging versions"
            )
    newest_applied = max(have, default=0)
    todo = [m for m in known if m.version not in have]
    if todo and todo[0].version < newest_applied:
        raise SchemaMismatch(
            f"the database has migration {newest_applied} but not this version's "
            f"{todo[0].version} ({todo[0].name}): it was migrated by a diverging version"
        )
    check_floor(applied, newest_known)
    if newest_applied > newest_known:
        newer = sorted(v for v in have if v > newest_known)
        log.info(
            "database schema at migration %d, newer than this version's %d (%s: a node of a "
            "newer version migrated it): running on it, migrating nothing",
            newest_applied,
            newest_known,
            ", ".join(f"{v} {have[v].name}" for v in newer),
        )
    return todo


def check_floor(applied: Sequence[Applied], newest_known: int) -> None:
    """``SchemaMismatch`` when a contract step the database had removed what this version's
    code (which knows migrations up to ``newest_known``) still uses."""
    contracts = [a for a in applied if a.contract_after is not None]
    for contract in contracts:
        assert contract.contract_after is not None
        if contract.contract_after > newest_known:
            raise SchemaMismatch(
                f"the database had migration {contract.version} ({contract.name}), which "
                f"removes what versions before migration {contract.contract_after} use; this "
                f"version knows migrations up to {newest_known}: run a version with migration "
                f"{contract.contract_after} or later"
            )


def check_contract(migration: Migration, live: Iterable[Row]) -> None:
    """``SchemaMismatch`` when ``migration`` is a contract step and the code of a live node
    (``live``: their rows of ``nodes``, as the backend read them) predates what it requires:
    that node still uses what it removes."""
    needs = migration.contract_after
    if needs is None:
        return
    behind = [node for node in LiveNode.rows(live) if node.knows < needs]
    if behind:
        nodes = ", ".join(
            f"{node.id!r} (host {node.host}, migrations up to {node.knows})" for node in behind
        )
        raise SchemaMismatch(
            f"migration {migration.version} ({migration.name}) removes what versions before "
            f"migration {needs} use, and node(s) {nodes} still run such a version: upgrade "
            f"every node to a version with migration {needs} or later first (docs/upgrades.md)"
        )


def split_statements(script: str) -> list[str]:
    """Split a script into complete statements (``sqlite3.complete_statement`` knows about
    semicolons inside strings and trigger bodies; PostgreSQL's dollar quoting it does not);
    comment-only chunks are dropped."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if _has_code(statement):
                statements.append(statement)
            buffer = ""
    if _has_code(buffer):
        raise ValueError("migration ends with an incomplete statement")
    return statements


def _has_code(chunk: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in chunk.splitlines())


def _code(sql: str) -> str:
    """``sql`` without its ``--`` comment lines."""
    return "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))


__all__ = [
    "CREATE_SCHEMA_MIGRATIONS",
    "NODE_SCHEMA_RECORDED",
    "Applied",
    "LiveNode",
    "Migration",
    "check_contract",
    "check_floor",
    "load_migrations",
    "pending",
    "schema_version",
    "split_statements",
]
