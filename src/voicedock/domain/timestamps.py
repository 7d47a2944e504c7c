"""How voicedock writes a moment, wherever it is read: ISO 8601 in UTC with milliseconds and
a ``Z`` (``2026-01-01T10:00:00.000Z``) — every API answer, webhook payload, event stream and
stored idempotent answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


def utcnow() -> datetime:
    """Now, in UTC (the records' timestamps)."""
    return datetime.now(UTC)


@overload
def iso(moment: datetime) -> str: ...


@overload
def iso(moment: None) -> None: ...


@overload
def iso(moment: datetime | None) -> str | None: ...


def iso(moment: datetime | None) -> str | None:
    """``moment`` as the product writes it (``None`` stays ``None``: a field not set). A
    moment without a timezone is refused: every stored time is aware."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
