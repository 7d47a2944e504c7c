"""A transcript turn as the live call hands it to the record (`calls/live/record.py`'s
``TranscriptTurn``), for tests that store turns without a live call."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Turn:
    role: str
    content: str
    started_at: float = 1.0
    ended_at: float = 2.0
    interrupted: bool = False
    member: str | None = None
    language: str | None = None
    node: str | None = None
