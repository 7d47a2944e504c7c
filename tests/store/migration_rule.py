"""The expand-then-contract rule, read from a migration's SQL (docs/upgrades.md).

During a rolling upgrade a node of the previous version runs on the schema a node of the new
version migrated. A migration that only *expands* the schema leaves that node working: it adds
tables, columns an insert that does not name them can leave out (nullable, or with a default),
indexes on new tables (on an existing PostgreSQL table: built ``CONCURRENTLY``, so that writes
go on while it builds), and fills in the columns it adds. Anything else may break the old
node — a table or column dropped or renamed, a type changed, a new NOT NULL without a default,
a constraint (a unique index, a check) rows the old code writes could violate, data the old code
reads changed — and belongs in a *contract* step (``-- contract: unused since NNN``), applied
once every node runs a version that no longer uses what it removes.

``breaking`` lists what in one migration is not an expand step; a statement it does not know
is listed too (a new kind of statement is classified here before a migration uses it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voicedock.store.migrate import Migration, split_statements

_WORD = r"[A-Za-z_][A-Za-z0-9_]*"
_CREATE_TABLE = re.compile(rf"^CREATE TABLE (?:IF NOT EXISTS )?({_WORD}) ?\(", re.IGNORECASE)
_CREATE_INDEX = re.compile(
    rf"^CREATE (UNIQUE )?INDEX (CONCURRENTLY )?(IF NOT EXISTS )?({_WORD}) ON ({_WORD})\b",
    re.IGNORECASE,
)
# SQLite's full-text index (FTS5, a virtual table) and the triggers that keep it, on a table
# the migration creates.
_CREATE_VIRTUAL_TABLE = re.compile(rf"^CREATE VIRTUAL TABLE ({_WORD}) USING ", re.IGNORECASE)
_CREATE_TRIGGER = re.compile(
    rf"^CREATE TRIGGER ({_WORD}) (?:BEFORE|AFTER) (?:INSERT|UPDATE|DELETE) ON ({_WORD}) ",
    re.IGNORECASE,
)
_ALTER_TABLE = re.compile(rf"^ALTER TABLE (?:ONLY )?({_WORD}) (.*)$", re.IGNORECASE | re.DOTALL)
_ADD_COLUMN = re.compile(rf"^ADD (?:COLUMN )?(?:IF NOT EXISTS )?({_WORD}) (.*)$", re.IGNORECASE)
_SET_DEFAULT = re.compile(rf"^ALTER (?:COLUMN )?{_WORD} SET DEFAULT\b", re.IGNORECASE)
_UPDATE = re.compile(rf"^UPDATE ({_WORD}) SET (.*?)(?: WHERE .*)?$", re.IGNORECASE | re.DOTALL)
_INSERT = re.compile(rf"^INSERT INTO ({_WORD})\b", re.IGNORECASE)
_DELETE = re.compile(rf"^DELETE FROM ({_WORD})\b", re.IGNORECASE)
_DROP = re.compile(r"^DROP (TABLE|INDEX|VIEW|TRIGGER|FUNCTION|TYPE)\b", re.IGNORECASE)
# Column defaults PostgreSQL evaluates per row: adding such a column rewrites the table under
# an exclusive lock (a constant default is stored once, at no cost).
_VOLATILE = re.compile(
    r"\b(now|clock_timestamp|statement_timestamp|random|gen_random_uuid|nextval)\s*\(|"
    r"\bCURRENT_TIMESTAMP\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """A statement of a migration that is not an expand step, and why."""

    statement: str  # its first line
    problem: str


def breaking(migration: Migration, dialect: str) -> list[Finding]:
    """What in ``migration`` (of ``dialect``, "sqlite" or "postgres") could break a node of
    the previous version running on the migrated schema, or stall it while it migrates."""
    created: set[str] = set()  # tables this migration creates
    added: set[tuple[str, str]] = set()  # (table, column) it adds
    found: list[Finding] = []
    statements = [_normalized(s) for s in split_statements(migration.sql)]
    concurrent = [s for s in statements if re.search(r"\bCONCURRENTLY\b", s, re.IGNORECASE)]
    if concurrent and len(concurrent) < len(statements):
        found.append(
            Finding(
                concurrent[0],
                "a migration that builds indexes CONCURRENTLY runs outside a transaction: "
                "it holds nothing else (put the rest in a migration of its own)",
            )
        )
    for statement in statements:
        problem = _problem(statement, dialect, created, added)
        if problem:
            found.append(Finding(statement.split("\n")[0][:120], problem))
    return found


def _problem(
    statement: str, dialect: str, created: set[str], added: set[tuple[str, str]]
) -> str | None:
    if match := _CREATE_TABLE.match(statement):
        created.add(match.group(1).lower())
        return None
    if match := _CREATE_VIRTUAL_TABLE.match(statement):
        created.add(match.group(1).lower())
        return None
    if match := _CREATE_TRIGGER.match(statement):
        if match.group(2).lower() in created:
            return None
        return "a trigger on a table the previous version writes"
    if match := _CREATE_INDEX.match(statement):
        unique, concurrently, if_not_exists, _name, table = match.groups()
        return _index_problem(
            table.lower() in created,
            unique=bool(unique),
            concurrently=bool(concurrently),
            if_not_exists=bool(if_not_exists),
            dialect=dialect,
        )
    if match := _ALTER_TABLE.match(statement):
        table, action = match.group(1).lower(), match.group(2).strip()
        if table in created:
            return None
        for part in _top_level(action):
            if problem := _alter_problem(table, part.strip(), dialect, added):
                return problem
        return None
    if match := _UPDATE.match(statement):
        table = match.group(1).lower()
        assigned = {a.split("=")[0].strip().lower() for a in _top_level(match.group(2))}
        if table in created or all((table, column) in added for column in assigned):
            return None  # fills in what this migration adds
        return "changes values in columns the previous version reads"
    if match := _INSERT.match(statement):
        if match.group(1).lower() in created:
            return None
        return "adds rows to a table the previous version reads"
    if match := _DELETE.match(statement):
        if match.group(1).lower() in created:
            return None
        return "deletes rows the previous version may read"
    if match := _DROP.match(statement):
        kind = match.group(1).lower()
        return f"drops {'an' if kind == 'index' else 'a'} {kind} the previous version may use"
    return "a statement the rule does not know (classify it in tests/store/migration_rule.py)"


def _index_problem(
    new_table: bool, *, unique: bool, concurrently: bool, if_not_exists: bool, dialect: str
) -> str | None:
    if new_table:
        return None
    if unique:
        return (
            "a unique index on an existing table: rows the previous version writes may violate it"
        )
    if dialect == "postgres" and not concurrently:
        return (
            "an index on an existing table built without CONCURRENTLY: writes to the table "
            "wait until it is built"
        )
    if concurrently and not if_not_exists:
        return "CREATE INDEX CONCURRENTLY without IF NOT EXISTS: a second attempt fails"
    return None


def _alter_problem(
    table: str, action: str, dialect: str, added: set[tuple[str, str]]
) -> str | None:
    if match := _ADD_COLUMN.match(action):
        column, definition = match.group(1).lower(), match.group(2)
        upper = definition.upper()
        if re.match(r"^(CONSTRAINT|CHECK|UNIQUE|PRIMARY|FOREIGN)\b", column.upper()):
            return "adds a constraint existing rows or the previous version's writes may violate"
        added.add((table, column))
        has_default = re.search(r"\bDEFAULT\b", upper) is not None
        if "NOT NULL" in upper and not has_default:
            return "a NOT NULL column without a default: the previous version's inserts fail"
        if re.search(r"\b(UNIQUE|PRIMARY KEY|CHECK)\b", upper):
            return "a new column with a constraint the previous version's writes may violate"
        if dialect == "postgres" and has_default and _VOLATILE.search(definition):
            return "a column with a volatile default: PostgreSQL rewrites the whole table"
        return None
    if _SET_DEFAULT.match(action):
        return None
    upper = f" {action.upper()} "
    if upper.startswith(" DROP CONSTRAINT "):
        return "drops a constraint the previous version may rely on (ON CONFLICT, a check)"
    if upper.startswith(" DROP "):
        return "drops a column the previous version reads or writes"
    if upper.startswith(" RENAME "):
        return "renames what the previous version names"
    if " TYPE " in upper:
        return "changes a column's type under the previous version"
    if " SET NOT NULL " in upper:
        return "a column the previous version may leave out becomes NOT NULL"
    if " DROP NOT NULL " in upper:
        return "NULLs where the previous version expects a value"
    if " DROP DEFAULT " in upper:
        return "the previous version's inserts relied on the default"
    if upper.startswith(" ADD "):
        return "adds a constraint existing rows or the previous version's writes may violate"
    return "an ALTER TABLE the rule does not know (classify it in tests/store/migration_rule.py)"


def _top_level(text: str) -> list[str]:
    """``a = 1, b = f(x, y)`` → its comma-separated parts (commas inside parentheses stay)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _normalized(statement: str) -> str:
    """The statement without comments, its whitespace runs made single spaces."""
    code = "\n".join(
        line.split("--")[0] for line in statement.splitlines() if line.split("--")[0].strip()
    )
    return re.sub(r"\s+", " ", code).strip().rstrip(";").strip()


__all__ = ["Finding", "breaking"]
