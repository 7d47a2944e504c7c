"""``CallServers``: which of several PBX servers carries each call (``pbx/several.py``).

A call is placed on a server when it is originated there, when that server reports it
inbound, or when a call of a previous run is located (``locate``); it is forgotten once it has
left its server (hung up, transferred away) or the server restarted under it, and when an
originate did not place it. A call no server is known for is asked of every server that can
take it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

from voicedock.domain.ids import mask_call_id
from voicedock.errors import PbxError
from voicedock.pbx.base import PbxEvent, PbxEventKind

__all__ = ["CallServers"]

log = logging.getLogger("voicedock.pbx.several")

# Events after which the call has left its server: what is remembered of it goes.
_GONE = frozenset({PbxEventKind.HANGUP, PbxEventKind.TRANSFERRED, PbxEventKind.PBX_RESTARTED})


class CallServers:
    """Each known call's server, by name, among the configured ``names``."""

    __slots__ = ("_names", "_where")

    def __init__(self, names: Collection[str]) -> None:
        self._names = tuple(names)
        self._where: dict[str, str] = {}  # call id -> the server carrying it

    def of(self, call_id: str) -> str | None:
        """The name of the server carrying the call, if known."""
        return self._where.get(call_id)

    def place(self, call_id: str, name: str) -> None:
        self._where[call_id] = name

    def forget(self, call_id: str) -> None:
        self._where.pop(call_id, None)

    def locate(self, call_id: str, name: str | None) -> None:
        """A call of a previous run is on the server stored with it, if still configured."""
        if name in self._names:
            self._where[call_id] = name
        else:
            if name:
                log.warning("call %s: its PBX is not configured any more", mask_call_id(call_id))
            self._where.pop(call_id, None)

    def carrier(self, call_id: str) -> str:
        """The call's server; ``PbxError`` when none is known."""
        name = self._where.get(call_id)
        if name is None:
            raise PbxError(f"call {mask_call_id(call_id)} is on none of the configured PBXs")
        return name

    def candidates(self, call_id: str) -> list[str]:
        """The call's server, or every server when it is not known."""
        name = self._where.get(call_id)
        return [name] if name is not None else list(self._names)

    def on(self, name: str, calls: Mapping[str, str | None]) -> dict[str, str | None]:
        """Those of ``calls`` that may be on server ``name``: its own, and those of no known
        server."""
        where = self._where
        return {call: ref for call, ref in calls.items() if where.get(call) in (name, None)}

    def carried_by(self, name: str) -> list[str]:
        """The calls on server ``name``, in call id order."""
        return sorted(call_id for call_id, where in self._where.items() if where == name)

    def reported(self, name: str, event: PbxEvent) -> None:
        """Server ``name`` reported ``event``: a call that left it is forgotten."""
        if event.kind in _GONE and self._where.get(event.call_id) == name:
            del self._where[event.call_id]
