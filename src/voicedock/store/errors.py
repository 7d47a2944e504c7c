"""Store errors finer than ``StoreError`` that callers act on.

StoreError (voicedock.errors)
├── DuplicateKeyError   — a unique key (id, E.164 number, key hash, ...) already exists
├── TransactionConflict — the server rolled the transaction back to break a lock cycle
│                         (deadlock) or a serialization conflict; the same work may be retried
├── SchemaMismatch      — the database's migrations are not this version's to run on (store/
│                         migrate.py): a diverging history, or a contract step it predates
└── StoreUnavailable    — (voicedock.errors) the database cannot serve us right now; retry

Each backend classifies its driver's errors at its I/O boundary (``sqlite.py``: busy/locked;
``postgres/store.py``: connection lost, admin/crash shutdown, cannot connect now, read-only after a
failover).
"""

from __future__ import annotations

from voicedock.errors import StoreError, StoreUnavailable


class DuplicateKeyError(StoreError):
    """An insert collided with a unique key; the API maps this to 409."""


class TransactionConflict(StoreError):
    """The database rolled the transaction back (a deadlock it broke, or a serialization
    failure): nothing of it was committed and the same work may be retried."""


class SchemaMismatch(StoreError):
    """This version may not run on the database, or not migrate it now: its migrations diverge
    from the database's, a contract step the database had removed what this version uses, or
    a contract step to apply would remove what a live node of an older version still uses."""


__all__ = [
    "DuplicateKeyError",
    "SchemaMismatch",
    "StoreError",
    "StoreUnavailable",
    "TransactionConflict",
]
