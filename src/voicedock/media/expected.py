"""The media connections a PBX's media server waits for, one at a time per call.

Asterisk's media acceptor and FreeSWITCH's audio-stream server are each told, before the PBX
is asked to connect, which call (or channel) a connection will be for; the connection that
arrives is handed to the one waiting for it. This is that register: a second wait for the same
key is refused, and a waiter that is done (handed its connection, timed out, cancelled) leaves
it without dropping a newer waiter of the same key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from voicedock.errors import MediaError

P = TypeVar("P")


class Expected(Generic[P]):
    """The waiters by key (a call id, a channel uuid)."""

    def __init__(self, already: str) -> None:
        """``already`` is the ``MediaError``'s message for a key already waited for."""
        self._already = already
        self._waiting: dict[str, P] = {}

    def add(self, key: str, pending: P) -> P:
        if key in self._waiting:
            raise MediaError(self._already)
        self._waiting[key] = pending
        return pending

    def get(self, key: str) -> P | None:
        return self._waiting.get(key)

    def forget(self, key: str, pending: P) -> None:
        """``pending`` stops waiting (a newer waiter of the same key stays)."""
        if self._waiting.get(key) is pending:
            del self._waiting[key]

    def waiting(self) -> list[P]:
        return list(self._waiting.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self._waiting)
