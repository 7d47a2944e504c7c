"""This process among the voicedock nodes that share one database: its lease, and the calls of
nodes that died.

Each node has an id (``[node] id``, by default the host's name) and a lease row in the ``nodes``
table that it renews every third of ``[node] lease_seconds``; every call it creates carries its
id (``Call.owner_node``). A node that stops renewing (``kill -9``, a crash, a lost host) is dead
once its lease expired: at its next renewal a surviving node deletes the dead node's row and
makes the dead node's live calls its own in one transaction (``claim_lost_calls``: exactly one
node claims each call, however many survive), hangs up what is left of them at the PBX and ends
them ``node-lost``, reported like any end (``calls/recovery.CallRecovery.end_lost``) — within
``lease_seconds`` plus a renewal interval plus the hang-up (about 20 s with the defaults).

Control commands sent to any node are carried out by the call's node (``Node.control``,
``calls/nodes/command_relay``): the node listens for them as a third background task.

``join`` (at start-up) writes the lease and returns the calls the node's own previous run left
(resumed or ended ``service-restart`` by ``calls/recovery``) and the calls of dead nodes it
claimed; it never touches a live node's calls. It refuses to start (``ConfigError``) while a
live process holds the same node id, and on SQLite (one node only) while any other node runs.
A lease that is still valid but whose process is provably gone (same host and process
namespace, the pid no longer exists: a ``kill -9`` just before a restart) does not hold the
start up.

A node that drains (``calls/nodes/drain.py``) says so in its lease row (``draining``), as
``voicedock nodes drain`` does for it (the node sees it at its next renewal: ``drain_asked``).
At each renewal a node reads the rows: the live nodes that do not drain take the inbound calls
(told to the PBX) and, while this one drains, its outbound requests (``others``).

Lease times come from the database's clock (PostgreSQL), so nodes on several hosts agree on
them. A node whose own lease expired while it lived (the database out of reach for longer than
the lease) finds its row gone, logs it and joins again: its calls have been ended by another
node meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from voicedock.aio import Supervisor
from voicedock.calls.control import ControlCommand
from voicedock.calls.engine import CallEngine
from voicedock.calls.nodes.command_relay import CommandRelay
from voicedock.calls.recovery import CallRecovery
from voicedock.config import NodeSettings
from voicedock.domain.ids import mask_call_id
from voicedock.domain.records import Call, NodeLease
from voicedock.errors import ConfigError, StoreError
from voicedock.pbx.base import DrainingPbx, InboundAway, LiveNodesPbx, Pbx
from voicedock.store.base import Store
from voicedock.store.migrate import schema_version

log = logging.getLogger("voicedock.calls.nodes")

_JOIN_POLL = 0.5  # seconds between looks at a rival's lease while deciding whether it lives


def process_space() -> str:
    """Names the process namespace this process's pid is valid in (the kernel's boot id and
    the pid namespace, on Linux); "" where unknown: a predecessor's pid then proves nothing."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return f"{boot}/{namespace}"


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def provably_dead(lease: NodeLease, space: str) -> bool:
    """The node's process is gone: it ran in this very process namespace and its pid is free."""
    return bool(space) and lease.pid_space == space and not _pid_exists(lease.pid)


class Node:
    """This node's lease and the settling of dead nodes' calls. ``join``, ``start``, then
    ``aclose`` (idempotent; leaves the lease)."""

    def __init__(
        self,
        store: Store,
        engine: CallEngine,
        pbx: Pbx,
        recovery: CallRecovery,
        settings: NodeSettings,
        *,
        one_node: bool,
        lease_store: Store | None = None,
    ) -> None:
        """``lease_store``: where the lease is renewed, if not ``store`` — a connection of its
        own, so that the node's heartbeat never waits behind its calls' work for the pool."""
        self.id = engine.node_id
        self.run = uuid.uuid4().hex
        self._store = store
        self._lease_store = lease_store if lease_store is not None else store
        self._pbx = pbx
        self._recovery = recovery
        self._lease = timedelta(seconds=settings.lease_seconds)
        self.renew_interval = settings.lease_seconds / 3
        self._one_node = one_node  # SQLite: no other node may run on the database
        self._space = process_space()
        self._host = socket.gethostname()
        self._tasks = Supervisor(f"node {self.id}", log)
        self._joined = False
        self.draining = False  # takes no new call (calls/nodes/drain.py)
        # Its lease row says it drains and it did not ask itself: `voicedock nodes drain`.
        self.drain_asked = asyncio.Event()
        # The other live nodes that do not drain, as of the last look at the leases.
        self.others: tuple[str, ...] = ()
        # Claimed calls of dead nodes not ended yet (a store error): tried again each renewal.
        self._unsettled: dict[str, Call] = {}
        self._settling = asyncio.Lock()  # one settlement at a time (start-up and renewals)
        self.commands = self._command_relay(engine)

    def _command_relay(self, engine: CallEngine) -> CommandRelay:
        """Control commands reach the node that serves the call (``command_relay.py``): run
        by the engine here, relayed to a live owner, its calls settled where it is dead."""
        return CommandRelay(
            self.id,
            self._store,
            engine.control.run,
            owner_alive=self.lease_alive,
            settle=self.settle_lost,
            tasks=self._tasks,
        )

    def _row(self, now: datetime) -> NodeLease:
        return NodeLease(
            id=self.id,
            host=self._host,
            pid=os.getpid(),
            pid_space=self._space,
            run=self.run,
            started_at=now,
            lease_until=now + self._lease,
            draining=self.draining,
            schema_version=schema_version(),
        )

    async def join(self) -> tuple[list[Call], list[Call]]:
        """Write this node's lease: (the calls this node's previous run left live, the calls of
        dead nodes now this node's to end). ``ConfigError`` while another live process holds
        this node id, or on SQLite any other node runs."""
        # Before the lease exists no call of this run can carry the id.
        previous = await self._store.list_active_calls(self.id)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._lease.total_seconds() + self.renew_interval
        first_seen: dict[str, NodeLease] = {}
        while True:
            async with self._store.transaction() as tx:
                now = await tx.clock()
                rivals: list[NodeLease] = []
                for lease in await tx.nodes_for_update():
                    if lease.lease_until <= now:
                        continue  # expired: claimed below
                    if provably_dead(lease, self._space):
                        if lease.id != self.id:
                            await tx.delete_node(lease.id, lease.run)  # its calls: claimed below
                        continue
                    if lease.id == self.id or self._one_node:
                        rivals.append(lease)
                if not rivals:
                    await tx.put_node(self._row(now))
                    unowned = await tx.take_unowned_calls(self.id)
                    lost = await tx.claim_lost_calls(self.id, now)
            if not rivals:
                break
            renewed = [
                lease
                for lease in rivals
                if lease.id in first_seen and lease.lease_until > first_seen[lease.id].lease_until
            ]
            if renewed or loop.time() >= give_up:
                raise self._refusal((renewed or rivals)[0])
            for lease in rivals:
                if lease.id not in first_seen:  # wait out its lease, however long it is
                    first_seen[lease.id] = lease
                    left = (lease.lease_until - now).total_seconds() + self.renew_interval
                    give_up = max(give_up, loop.time() + left)
            await asyncio.sleep(_JOIN_POLL)
        self._joined = True
        known = {call.id for call in previous}
        own = previous + [call for call in unowned if call.id not in known]
        if lost:
            log.warning(
                "node %s: %d call(s) of nodes that stopped renewing their lease: ending them",
                self.id,
                len(lost),
            )
        return own, lost

    def _refusal(self, rival: NodeLease) -> ConfigError:
        where = f"host {rival.host}, pid {rival.pid}"
        if rival.id == self.id:
            return ConfigError(
                "node.id",
                f"node {self.id!r} is already running on this database ({where}); "
                "give each node its own [node] id",
            )
        return ConfigError(
            "database.url",
            f"an SQLite database serves one voicedock node, and node {rival.id!r} is running "
            f"on it ({where}); stop it, or use PostgreSQL to run several nodes",
        )

    async def start(self) -> None:
        """Renew the lease, settle dead nodes' calls and carry out the commands other nodes
        send in the background from now on (three tasks: a slow hang-up never delays a
        renewal)."""
        await self._tasks.start()
        await self._look_around()
        if self.commands.mailbox is not None:
            self._tasks.spawn(self.commands.serve(), name="node-commands")
        self._tasks.spawn(self._every_interval(self.renew, "lease not renewed"), name="node-lease")
        self._tasks.spawn(
            self._every_interval(self.settle_lost, "dead nodes' calls not settled"),
            name="node-settle",
        )

    async def _every_interval(self, step: Callable[[], Awaitable[object]], failed: str) -> None:
        """``step`` every renewal interval until cancelled; a failure is logged and retried
        (the lease must outlive any error)."""
        while True:
            await asyncio.sleep(self.renew_interval)
            try:
                await step()
            except StoreError as exc:
                log.warning("node %s: %s (%s); retrying", self.id, failed, exc)
            except Exception:
                log.exception("node %s: %s; retrying", self.id, failed)

    async def control(self, org_id: str, call_id: str, command: ControlCommand) -> None:
        """``POST /calls/{id}/control``, carried out by the node that serves the call."""
        await self.commands.control(org_id, call_id, command)

    async def lease_alive(self, node_id: str) -> bool:
        """The node holds a lease that has not expired."""
        async with self._store.transaction() as tx:
            now = await tx.clock()
        leases = await self._store.list_nodes()
        return any(lease.id == node_id and lease.lease_until > now for lease in leases)

    async def renew(self) -> None:
        async with self._lease_store.transaction() as tx:
            now = await tx.clock()
            until = now + self._lease
            drains = await tx.renew_node(self.id, self.run, until, draining=self.draining)
            if drains is None:
                log.error(
                    "node %s: its lease had expired (the database was out of reach?) and "
                    "another node ended its calls; joining again",
                    self.id,
                )
                await tx.put_node(self._row(now))
        if drains and not self.draining:
            self.drain_asked.set()
        await self._look_around(now)

    async def start_draining(self) -> None:
        """Take no new call from now on: the lease row says so at once (else at the next
        renewal), so that the other nodes take the inbound calls, and the PBX is told."""
        self.draining = True
        try:
            await self.renew()
        except StoreError as exc:  # the next renewal writes it
            log.warning("node %s: draining not stored yet (%s)", self.id, exc)
            await self._tell_pbx(list(self.others), [self.id])

    async def _look_around(self, now: datetime | None = None) -> None:
        """Read the leases (on the lease's own connection, as of ``now``: the renewal's): which
        other live nodes take calls (``others``), and tell the PBX which nodes take inbound
        calls (on Asterisk, their ARI applications receive them: ``pbx/asterisk/node_apps``)
        and, while this one drains, where its callers go."""
        try:
            if now is None:
                async with self._lease_store.transaction() as tx:
                    now = await tx.clock()
            leases = await self._lease_store.list_nodes()
        except StoreError as exc:  # the PBX keeps the last list; the next renewal tries again
            log.warning("node %s: live nodes not read (%s)", self.id, exc)
            return
        alive = [lease for lease in leases if lease.lease_until > now and lease.id != self.id]
        self.others = tuple(sorted(lease.id for lease in alive if not lease.draining))
        draining = {lease.id for lease in alive if lease.draining}
        if self.others and self.draining:
            await self._tell_pbx(list(self.others), sorted(draining | {self.id}))
        elif self.draining:  # no node takes calls: its callers still reach it, to be rejected
            await self._tell_pbx([self.id], sorted(draining))
        else:
            await self._tell_pbx(sorted({*self.others, self.id}), sorted(draining))

    async def _tell_pbx(self, taking: list[str], draining: list[str]) -> None:
        """The nodes that take inbound calls and the live ones that drain, told to a PBX that
        shares its inbound calls among them; where this node's callers go while it drains."""
        if self.draining and isinstance(self._pbx, DrainingPbx):
            others = bool(set(taking) - {self.id})
            self._pbx.turn_inbound_away(InboundAway.ELSEWHERE if others else InboundAway.REJECTED)
        if isinstance(self._pbx, LiveNodesPbx):
            await self._pbx.set_live_nodes(taking, draining)

    async def settle_lost(self) -> list[str]:
        """Claim the calls of nodes whose lease expired, hang up what is left of them and end
        them ``node-lost``: the ids ended."""
        async with self._store.transaction() as tx:
            claimed = await tx.claim_lost_calls(self.id, await tx.clock())
        if claimed:
            log.warning(
                "node %s: %d call(s) of a node that stopped renewing its lease: ending them",
                self.id,
                len(claimed),
            )
        for call in claimed:
            self._unsettled[call.id] = call
        if not self._unsettled:
            return []
        return await self.end_lost(list(self._unsettled.values()))

    async def end_lost(self, calls: Sequence[Call]) -> list[str]:
        """End claimed calls of dead nodes (``node-lost``); one that could not be ended is
        tried again at the next renewal."""
        for call in calls:
            self._unsettled[call.id] = call
        async with self._settling:  # what an earlier settlement ended is not ended again
            return await self._end_lost([c for c in calls if c.id in self._unsettled])

    async def _end_lost(self, calls: Sequence[Call]) -> list[str]:
        if not calls:
            return []
        recovery = await self._recovery.end_lost(calls)
        for call in calls:
            if call.id in recovery.ended:
                self._unsettled.pop(call.id, None)
                continue
            current = await self._store.get_call(None, call.id)
            if current is None or current.status.terminal:
                self._unsettled.pop(call.id, None)
            else:
                log.warning("call %s: not ended yet; trying again", mask_call_id(call.id))
        return recovery.ended

    async def aclose(self) -> None:
        """Stop renewing and leave: the lease row goes (idempotent)."""
        await self._tasks.aclose()
        if not self._joined:
            return
        self._joined = False
        try:
            async with self._store.transaction() as tx:
                await tx.delete_node(self.id, self.run)
        except StoreError as exc:  # it expires on its own
            log.warning("node %s: lease not released (%s)", self.id, exc)


__all__ = ["Node", "process_space", "provably_dead"]
