"""Store errors finer than ``StoreError`` that callers act on.

StoreError (voicedock.errors)
└── DuplicateKeyError   — a unique key (id, E.164 number, key hash, ...) already exists
"""

from __future__ import annotations

from voicedock.errors import StoreError


class DuplicateKeyError(StoreError):
    """An insert collided with a unique key; the API maps this to 409."""


__all__ = ["DuplicateKeyError", "StoreError"]
