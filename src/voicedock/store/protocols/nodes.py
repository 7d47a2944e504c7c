"""Nodes sharing the database (``calls/nodes/``): their leases, who owns which call, and the
commands they send each other through it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from voicedock.domain.records import Call, NodeLease


@dataclass(frozen=True, slots=True)
class NodeReply:
    """A stored node command as its sender finds it: ``state`` is "pending" (not taken yet),
    "taken" (being carried out) or "answered" (``reply`` holds the answer)."""

    state: str
    reply: str | None


class NodeMailbox(Protocol):
    """Commands from one node to another through the database (``calls/nodes/command_relay.py``): a
    row per command, and a notification on the recipient's channel (its id) when it is stored
    and on the sender's when it is answered. Only a database several nodes share has one."""

    async def send(self, sender: str, recipient: str, request: str) -> int:
        """Store ``request`` for ``recipient`` and notify it: the command's id."""
        ...

    async def take(self, command_id: int, recipient: str) -> str | None:
        """The request of a pending command of ``recipient``, now taken; ``None`` when it is
        not pending any more (taken already, or its sender gave up)."""
        ...

    async def answer(self, command_id: int, reply: str) -> None:
        """Store the answer and notify the sender."""
        ...

    async def reply(self, command_id: int) -> NodeReply | None:
        """The command as it stands; ``None`` once deleted."""
        ...

    async def drop(self, command_id: int) -> NodeReply | None:
        """Delete the command: as it stood, or ``None`` when it was gone."""
        ...

    async def pending(self, recipient: str) -> list[int]:
        """The ids of ``recipient``'s commands not taken yet, oldest first (after a missed
        notification); deletes commands left behind long ago."""
        ...

    def listen(self, node_id: str) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """The notifications of ``node_id``'s channel, on a connection of their own: "q<id>"
        for a command to it, "a<id>" for an answer to one it sent. The iterator ends when the
        connection is lost (notifications may have been missed: look at ``pending``)."""
        ...


class NodeWrites(Protocol):
    """The leases of ``calls/nodes/lease.py``."""

    async def clock(self) -> datetime:
        """The time leases are measured in: the database server's clock (PostgreSQL), so that
        nodes on several hosts agree; SQLite, whose nodes share one host: this host's."""
        ...

    async def nodes_for_update(self) -> list[NodeLease]:
        """Every node's lease row; no other node joins, leaves or claims calls until the
        transaction ends."""
        ...

    async def put_node(self, lease: NodeLease) -> None:
        """Write the node's lease row (replacing one of the same id: a previous run's event
        streams go with it)."""
        ...

    async def renew_node(
        self, node_id: str, run: str, until: datetime, *, draining: bool = False
    ) -> bool | None:
        """Extend the lease of this run of the node (marked draining when ``draining``):
        whether it drains now (it asked, or ``drain_node`` did); ``None`` when its row is gone
        (another node found it expired and took its calls) or belongs to another run."""
        ...

    async def drain_node(self, node_id: str) -> NodeLease | None:
        """Mark the node draining (``voicedock nodes drain``: it sees it at its next renewal):
        its lease row, or ``None`` when no node of that id has one."""
        ...

    async def delete_node(self, node_id: str, run: str | None = None) -> bool:
        """Delete the node's lease row (of that run), and the event streams it held."""
        ...

    async def take_unowned_calls(self, node_id: str) -> list[Call]:
        """Make every non-terminal call stored without an owner (before nodes were known)
        the node's; the calls, in ``seq`` order."""
        ...

    async def claim_lost_calls(self, node_id: str, now: datetime) -> list[Call]:
        """Delete the lease rows of other nodes that expired by ``now`` (and the event streams
        they held) and make every non-terminal call whose owner has no lease row the node's:
        the calls it claimed, in ``seq`` order. Each call is claimed by exactly one node,
        however many try at once."""
        ...


class NodeReads(Protocol):
    async def list_nodes(self) -> list[NodeLease]:
        """The lease rows of the nodes sharing this database."""
        ...

    def mailbox(self) -> NodeMailbox | None:
        """Commands between the nodes sharing this database; ``None`` where one node serves
        it (SQLite)."""
        ...


__all__ = ["NodeMailbox", "NodeReads", "NodeReply", "NodeWrites"]
