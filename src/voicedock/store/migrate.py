"""Numbered SQL migrations shipped as package data.

``migrations/<dialect>/NNN_name.sql`` files are applied in version order, each recorded in
``schema_migrations``; the backends run the pending ones in one transaction under a lock, so
``migrate()`` is idempotent and safe when several nodes start at once.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

_FILE_NAME = re.compile(r"^(\d+)_([A-Za-z0-9_]+)\.sql$")

CREATE_SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


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


def split_sqlite_statements(script: str) -> list[str]:
    """Split a script into complete statements (``sqlite3.complete_statement`` knows about
    semicolons inside strings and trigger bodies); comment-only chunks are dropped."""
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


__all__ = ["CREATE_SCHEMA_MIGRATIONS", "Migration", "load_migrations", "split_sqlite_statements"]
