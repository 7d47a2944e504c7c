"""Control commands for a call another node serves, carried through the database.

``POST /calls/{id}/control`` may reach any node. ``CommandRelay.control`` carries a command out
here when this node owns the call (or the database serves one node: SQLite); otherwise it stores
the command for the owner in the database's mailbox (``store.NodeMailbox``: a row, and a
notification on the owner's channel), waits for the owner's answer and gives it as the owner's
API would have: the same status code and body. So ``say`` and ``inject-context`` reach the
owner's conversation, ``end-call`` and ``transfer`` its PBX legs.

- The owner's lease has expired (the node died): the call is claimed and ended ``node-lost``
  here (``Node.settle_lost``, the same path as a renewal's) and the answer is ``409 Call not
  active``, naming the node.
- No answer within ``timeout`` seconds: ``503 Node unavailable``, saying whether the owner took
  the command (it may still be carried out) or not (it never will be).

Each node listens on its channel with ``serve``, a task of the node's ``Supervisor``, on a
connection of its own that is opened again whenever it is lost (commands stored meanwhile are
found then). What arrives is carried out by ``engine.control`` in a child task, and answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TypedDict

import msgspec

from voicedock.aio import Coro, Supervisor
from voicedock.calls.commands import command_data, command_of_data
from voicedock.calls.control import ControlCommand
from voicedock.calls.errors import CallNotActive, NodeUnavailable, OwnerAnswered
from voicedock.domain.ids import mask_call_id
from voicedock.errors import ApiError, NotFound, StoreError, StoreUnavailable
from voicedock.store.base import NodeMailbox, Store

log = logging.getLogger("voicedock.calls.nodes")

COMMAND_TIMEOUT = 10.0  # seconds the owner node has to answer a command
_RECHECK = 1.0  # seconds between looks at a command's row while no notification comes
_RECONNECT = 1.0  # seconds before listening again after the connection was lost
_EARLY = 256  # answers heard before their sender waited for them, kept at most

Control = Callable[[str, str, ControlCommand], Awaitable[None]]


class _Answer(TypedDict, total=False):
    """The owner's answer to a command, as stored in the mailbox: its status and error body
    as the API would give them, or the owner's database lost (``unavailable``), or a failure of
    its own (``failed``)."""

    status: int
    body: dict[str, str]
    unavailable: str
    failed: bool


class CommandRelay:
    def __init__(
        self,
        node_id: str,
        store: Store,
        local: Control,
        *,
        owner_alive: Callable[[str], Awaitable[bool]],
        settle: Callable[[], Awaitable[object]],
        tasks: Supervisor,
        timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        self.node_id = node_id
        self._store = store
        self.mailbox: NodeMailbox | None = store.mailbox()
        self._local = local  # carries a command out on this node (engine.control)
        self._owner_alive = owner_alive
        self._settle = settle  # claims and ends the calls of nodes whose lease expired
        self._tasks = tasks
        self.timeout = timeout
        self._answers: dict[int, asyncio.Event] = {}  # commands sent, until answered
        # Answers heard while their sender was still storing the command (a busy node): the
        # sender finds them here instead of at its next look at the row.
        self._early: dict[int, None] = {}
        self.listening = asyncio.Event()  # for tests: the channel is listened to

    async def control(self, org_id: str, call_id: str, command: ControlCommand) -> None:
        """Carry ``command`` out on the node that serves the call; what it raised, raised."""
        call = await self._store.get_call(org_id, call_id)
        if call is None:
            raise NotFound("no call with this id", error="Call not found")
        owner = call.owner_node
        if self.mailbox is None or owner in (None, self.node_id) or call.status.terminal:
            await self._local(org_id, call_id, command)
            return
        if not await self._owner_alive(owner):
            await self._owner_lost(org_id, call_id, owner)
        answer = await self._ask(self.mailbox, owner, org_id, call_id, command)
        if answer.get("unavailable"):
            raise StoreUnavailable(f"node {owner}: {answer['unavailable']}")
        if answer.get("failed"):
            raise RuntimeError(f"node {owner} failed to carry out a command")
        status = int(answer["status"])
        if status >= 400:
            raise OwnerAnswered(status, answer["body"])

    async def _owner_lost(self, org_id: str, call_id: str, owner: str) -> None:
        """The owner's lease expired: its calls are settled (``node-lost``), then 409 —
        unless it renewed meanwhile and still serves the call."""
        await self._settle()
        call = await self._store.get_call(org_id, call_id)
        if call is None or call.owner_node != owner or call.status.terminal:
            raise CallNotActive(
                f"node {owner!r}, which served the call, stopped (its lease expired): "
                "the call has ended (end_reason node-lost)"
            )

    async def _ask(
        self, mailbox: NodeMailbox, owner: str, org_id: str, call_id: str, command: ControlCommand
    ) -> _Answer:
        request = {"organization_id": org_id, "call_id": call_id, "command": command_data(command)}
        command_id = await mailbox.send(self.node_id, owner, json.dumps(request))
        answered = self._answers[command_id] = asyncio.Event()
        if command_id in self._early:  # answered already
            del self._early[command_id]
            answered.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            while (left := deadline - loop.time()) > 0:
                # The answer's notification, or a look at the row now and then (one missed
                # while the listening connection was down).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(left, _RECHECK)):
                        await answered.wait()
                answered.clear()
                found = await mailbox.reply(command_id)
                if found is not None and found.reply is not None:
                    return msgspec.json.decode(found.reply, type=_Answer)
        finally:
            self._answers.pop(command_id, None)
        last = await mailbox.drop(command_id)  # the owner takes it no more
        if last is not None and last.reply is not None:
            return msgspec.json.decode(last.reply, type=_Answer)
        log.warning(
            "call %s: node %s did not answer a command within %g s",
            mask_call_id(call_id),
            owner,
            self.timeout,
        )
        if not await self._owner_alive(owner):
            await self._owner_lost(org_id, call_id, owner)
        whom = f"node {owner!r}, which serves this call,"
        if last is not None and last.state == "taken":
            raise NodeUnavailable(
                f"{whom} did not answer within {self.timeout:g} s; the command may still be "
                "carried out: look at the call's events before sending it again"
            )
        raise NodeUnavailable(
            f"{whom} did not take the command within {self.timeout:g} s; it was not carried "
            "out: send it again"
        )

    async def serve(self) -> None:
        """Listen on this node's channel until cancelled: carry out the commands sent to it,
        wake the senders waiting for answers. A lost connection is opened again."""
        mailbox = self.mailbox
        if mailbox is None:
            return
        while True:
            try:
                async with mailbox.listen(self.node_id) as notices:
                    for answered in self._answers.values():  # answers missed meanwhile
                        answered.set()
                    for command_id in await mailbox.pending(self.node_id):
                        self._spawn(self._carry_out(mailbox, command_id))
                    self.listening.set()
                    async for notice in notices:
                        self._heard(mailbox, notice)
                log.warning("node %s: lost the connection listening for commands", self.node_id)
            except StoreError as exc:
                log.warning("node %s: not listening for commands (%s)", self.node_id, exc)
            finally:
                self.listening.clear()
            await asyncio.sleep(_RECONNECT)

    def _heard(self, mailbox: NodeMailbox, notice: str) -> None:
        kind, number = notice[:1], notice[1:]
        if not number.isdigit():
            return
        if kind == "q":
            self._spawn(self._carry_out(mailbox, int(number)))
        elif kind == "a":
            answered = self._answers.get(int(number))
            if answered is not None:
                answered.set()
                return
            self._early[int(number)] = None
            while len(self._early) > _EARLY:  # the oldest: their senders gave up
                del self._early[next(iter(self._early))]

    def _spawn(self, work: Coro[None]) -> None:
        self._tasks.spawn(work, name="node-command")

    async def _carry_out(self, mailbox: NodeMailbox, command_id: int) -> None:
        """Carry out a command another node sent, and answer it as the API would."""
        try:
            request = await mailbox.take(command_id, self.node_id)
            if request is None:
                return  # taken already, or its sender gave up
            answer = await self._answer(request)
            await mailbox.answer(command_id, json.dumps(answer))
        except StoreError as exc:  # the sender times out and says so
            log.warning("node %s: a command not answered (%s)", self.node_id, exc)

    async def _answer(self, request: str) -> _Answer:
        try:
            asked = json.loads(request)
            await self._local(
                asked["organization_id"], asked["call_id"], command_of_data(asked["command"])
            )
        except ApiError as exc:
            return {"status": exc.status, "body": exc.body()}
        except StoreUnavailable as exc:
            return {"unavailable": str(exc)}
        except Exception:
            log.exception("node %s: a command from another node failed", self.node_id)
            return {"failed": True}
        return {"status": 200}


__all__ = ["COMMAND_TIMEOUT", "CommandRelay"]
