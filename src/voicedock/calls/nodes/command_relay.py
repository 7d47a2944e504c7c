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

A draining node (``calls/nodes/drain.py``) hands a new ``POST /calls/outbound`` on to a live
node the same way (``forward``): the request as the client sent it (``Forwarded``), which that
node answers as its own API would (the handler the API gives ``take_forwarded``), and the
answer (``ForwardedAnswer``: status, body, headers) is the client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypedDict

import msgspec

from voicedock.aio import Coro, Supervisor
from voicedock.calls.commands import command_data, command_of_data
from voicedock.calls.control import ControlCommand
from voicedock.calls.errors import CallNotActive, NodeUnavailable, OwnerAnswered
from voicedock.domain.ids import mask_call_id
from voicedock.domain.json import JsonObject, JsonValue, json_object
from voicedock.errors import ApiError, NotFound, StoreError, StoreUnavailable
from voicedock.store.base import NodeMailbox, NodeReply, Store

log = logging.getLogger("voicedock.calls.nodes")

COMMAND_TIMEOUT = 10.0  # seconds the owner node has to answer a command
_RECHECK = 1.0  # seconds between looks at a command's row while no notification comes
_RECONNECT = 1.0  # seconds before listening again after the connection was lost
_EARLY = 256  # answers heard before their sender waited for them, kept at most

Control = Callable[[str, str, ControlCommand], Awaitable[None]]
OUTBOUND = "outbound"  # the kind of a forwarded POST /calls/outbound in the mailbox


@dataclass(frozen=True, slots=True)
class Forwarded:
    """A ``POST /calls/outbound`` a draining node hands on: the body as the client sent it,
    the organization and API key it came with, and its ``Idempotency-Key``."""

    organization_id: str
    api_key_id: str
    body: JsonValue
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class ForwardedAnswer:
    """What the node that took a forwarded request answered: the client's answer as is."""

    status: int
    body: JsonObject
    headers: dict[str, str] = field(default_factory=dict)


# Answers a forwarded request as this node's API would (given by the API: ``take_forwarded``).
ForwardedHandler = Callable[[Forwarded], Awaitable[ForwardedAnswer]]


class _Answer(TypedDict, total=False):
    """A node's answer to a command, as stored in the mailbox: its status and body as the
    API would give them (and its headers), or its database lost (``unavailable``), or a
    failure of its own (``failed``)."""

    status: int
    body: dict[str, object]  # JSON (read with ``json_object``)
    headers: dict[str, str]
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
        self._forwarded: ForwardedHandler | None = None  # until the API gives its handler
        self.listening = asyncio.Event()  # for tests: the channel is listened to

    def take_forwarded(self, handler: ForwardedHandler) -> None:
        """Answer the requests draining nodes hand on to this one with ``handler``."""
        self._forwarded = handler

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
        _checked(owner, answer)

    async def forward(self, node_id: str, asked: Forwarded) -> ForwardedAnswer:
        """Hand a request on to the live node ``node_id``: its answer, errors included
        (``OwnerAnswered``, as that node's API gave them)."""
        if self.mailbox is None:
            raise NodeUnavailable("no other node shares this database")
        request: JsonObject = {
            "kind": OUTBOUND,
            "organization_id": asked.organization_id,
            "api_key_id": asked.api_key_id,
            "body": asked.body,
            "idempotency_key": asked.idempotency_key,
        }
        answer, last = await self._exchange(self.mailbox, node_id, request)
        if answer is None:
            log.warning("node %s did not answer a call handed on in %g s", node_id, self.timeout)
            if last is not None and last.state == "taken":
                raise NodeUnavailable(
                    f"node {node_id!r}, which this draining node handed the call to, did not "
                    f"answer within {self.timeout:g} s; the call may still be placed: look at "
                    "GET /calls before sending it again (or send it with its Idempotency-Key)"
                )
            raise NodeUnavailable(
                f"node {node_id!r}, which this draining node handed the call to, did not take "
                f"it within {self.timeout:g} s; it was not placed: send it again"
            )
        if answer.get("failed"):  # a bug, or a node of a version that takes no such request
            raise NodeUnavailable(
                f"node {node_id!r}, which this draining node handed the call to, failed to take "
                "it; look at GET /calls before sending it again (or send it with its "
                "Idempotency-Key)"
            )
        status = _checked(node_id, answer)
        body = json_object(answer.get("body")) or {}
        return ForwardedAnswer(status, body, answer.get("headers", {}))

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

    async def _exchange(
        self, mailbox: NodeMailbox, recipient: str, request: JsonObject
    ) -> tuple[_Answer | None, NodeReply | None]:
        """Store ``request`` for ``recipient`` and wait for its answer: (the answer, None), or
        (None, the command as it stood when it was dropped) after ``timeout``."""
        command_id = await mailbox.send(self.node_id, recipient, json.dumps(request))
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
                    return msgspec.json.decode(found.reply, type=_Answer), None
        finally:
            self._answers.pop(command_id, None)
        last = await mailbox.drop(command_id)  # the recipient takes it no more
        if last is not None and last.reply is not None:
            return msgspec.json.decode(last.reply, type=_Answer), None
        return None, last

    async def _ask(
        self, mailbox: NodeMailbox, owner: str, org_id: str, call_id: str, command: ControlCommand
    ) -> _Answer:
        request: JsonObject = {
            "organization_id": org_id,
            "call_id": call_id,
            "command": command_data(command),
        }
        answer, last = await self._exchange(mailbox, owner, request)
        if answer is not None:
            return answer
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
            if asked.get("kind") == OUTBOUND:
                return await self._answer_forwarded(asked)
            await self._local(
                asked["organization_id"], asked["call_id"], command_of_data(asked["command"])
            )
        except ApiError as exc:
            return {"status": exc.status, "body": dict(exc.body()), "headers": exc.headers()}
        except StoreUnavailable as exc:
            return {"unavailable": str(exc)}
        except Exception:
            log.exception("node %s: a command from another node failed", self.node_id)
            return {"failed": True}
        return {"status": 200}

    async def _answer_forwarded(self, asked: JsonObject) -> _Answer:
        """A request a draining node handed on, answered as this node's API would."""
        if self._forwarded is None:  # still starting: the sender may try again
            raise NodeUnavailable(f"node {self.node_id!r} is starting; send the call again")
        org_id, key_id = asked["organization_id"], asked["api_key_id"]
        key = asked.get("idempotency_key")
        if not isinstance(org_id, str) or not isinstance(key_id, str):
            raise TypeError("a call handed on names no organization or API key")
        key = key if isinstance(key, str) else None
        answer = await self._forwarded(Forwarded(org_id, key_id, asked.get("body"), key))
        return {"status": answer.status, "body": dict(answer.body), "headers": answer.headers}


def _checked(node_id: str, answer: _Answer) -> int:
    """The status of another node's answer; raised as it answered when it is an error."""
    if answer.get("unavailable"):
        raise StoreUnavailable(f"node {node_id}: {answer['unavailable']}")
    if answer.get("failed"):
        raise RuntimeError(f"node {node_id} failed to carry out a command")
    status = int(answer["status"])
    if status >= 400:
        body = {k: v for k, v in answer.get("body", {}).items() if isinstance(v, str)}
        raise OwnerAnswered(status, body, answer.get("headers", {}))
    return status


__all__ = [
    "COMMAND_TIMEOUT",
    "CommandRelay",
    "Forwarded",
    "ForwardedAnswer",
    "ForwardedHandler",
]
