"""Live listen on this node (``GET /calls/{id}/listen``): which call a listener may hear, and
how many listen at once.

A call's audio exists only on the node that runs its conversation: the tap of its
``LiveConversation`` (``media/listen_tap.py``), reached through the engine's live calls. So:

- a call of another organization, or none: 404, exactly as ``GET /calls/{id}``;
- a call not in progress (still ringing, ended): 409 ``Call not active``; answered but its
  conversation not started yet (the media leg is opening): 409 too, retry in a moment;
- a call another node serves: 409 ``Call on another node``, with that node's id in ``node``
  (the client connects to that node; nothing is proxied between nodes);
- more listeners than ``[listen] max_listeners_per_call`` on the call, than
  ``max_listeners_per_organization`` on the organization's calls, or than ``max_listeners``
  on the node (each counted on this node): 429 with ``Retry-After``.

A supervisor's extension for "Take over" (``[listen] supervisor_extension``) is a transfer
destination like any other: ``check_supervisor_extension`` holds it to the ``[policy]`` at
start-up, and the transfer itself is checked again when it is asked for.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from voicedock.calls.control import LiveCalls
from voicedock.calls.errors import CallNotActive
from voicedock.calls.policy import check_transfer_destination
from voicedock.config import ListenSettings, PolicySettings
from voicedock.domain.records import Call, CallStatus
from voicedock.errors import ApiError, ConfigError, Conflict, NotFound, RateLimited
from voicedock.media.listen_tap import (
    ASSISTANT,
    CALLER,
    CHANNEL_NAMES,
    HEADER,
    SAMPLE_FORMAT,
    ListenEnded,
    Listener,
    ListenTap,
)
from voicedock.store.base import Store

FRAME_MS = 20  # both PBXs' media frames
LISTEN_RETRY_SECONDS = 5  # Retry-After of a listener over a cap


class CallOnAnotherNode(Conflict, error="Call on another node"):
    """The call's audio is on the node that serves it; the body names that node."""

    def __init__(self, message: str, *, node: str) -> None:
        super().__init__(message, extra={"node": node})
        self.node = node


@runtime_checkable
class Listenable(Protocol):
    """A live call whose two sides can be listened to (``RunningCall``,
    ``calls/runner/running_call.py``)."""

    def listen_tap(self) -> ListenTap | None: ...


def backlog_frames(settings: ListenSettings) -> int:
    """Frames a listener may have waiting: ``max_backlog_ms`` of both sides."""
    return max(2, 2 * settings.max_backlog_ms // FRAME_MS)


def check_supervisor_extension(settings: ListenSettings, policy: PolicySettings) -> None:
    """``[listen] supervisor_extension`` must be a destination the policy allows."""
    extension = settings.supervisor_extension
    if not extension:
        return
    try:
        check_transfer_destination(extension, policy)
    except ApiError as exc:
        raise ConfigError("listen.supervisor_extension", exc.message) from None


class Listening:
    """The listeners of this node's calls, counted per call, per organization and in all."""

    def __init__(
        self, settings: ListenSettings, node_id: str, store: Store, live_calls: LiveCalls
    ) -> None:
        self.settings = settings
        self._node_id = node_id
        self._store = store
        self._live_calls = live_calls
        self._by_call: Counter[str] = Counter()
        self._by_organization: Counter[str] = Counter()
        self._dropped_before = 0  # frames dropped by listeners that have left
        self._open: set[Listener] = set()

    @property
    def listeners(self) -> int:
        return len(self._open)

    @property
    def frames_dropped(self) -> int:
        """Frames dropped because a listener fell behind, since the node started."""
        return self._dropped_before + sum(listener.dropped for listener in self._open)

    async def call(self, org_id: str, call_id: str) -> tuple[Call, ListenTap]:
        """The call and its tap, or the refusal the API answers (see the module)."""
        call = await self._store.get_call(org_id, call_id)
        if call is None:
            raise NotFound("no call with this id", error="Call not found")
        if call.status is not CallStatus.IN_PROGRESS:
            raise CallNotActive(
                f"the call is {call.status.value}; only a call in progress can be listened to"
            )
        owner = call.owner_node
        if owner is not None and owner != self._node_id:
            raise CallOnAnotherNode(
                f"the call's audio is on node {owner!r}, which serves it; listen there",
                node=owner,
            )
        live: object = self._live_calls.get(call_id)
        tap = live.listen_tap() if isinstance(live, Listenable) else None
        if tap is None or tap.end_reason is not None:
            raise CallNotActive("the call's audio has not started on this node; retry shortly")
        return call, tap

    @contextlib.asynccontextmanager
    async def listen(self, org_id: str, call_id: str) -> AsyncIterator[tuple[Call, Listener]]:
        """A listener of the call for the block, within the caps (429 beyond them)."""
        call, tap = await self.call(org_id, call_id)
        self.check_room(org_id, call_id)
        try:
            listener = tap.listen(backlog_frames(self.settings))
        except ListenEnded:
            raise CallNotActive("the call has ended") from None
        self._by_call[call_id] += 1
        self._by_organization[org_id] += 1
        self._open.add(listener)
        try:
            yield call, listener
        finally:
            listener.close()
            self._open.discard(listener)
            self._dropped_before += listener.dropped
            self._by_call.subtract((call_id,))
            self._by_organization.subtract((org_id,))
            for counts, key in ((self._by_call, call_id), (self._by_organization, org_id)):
                if counts[key] <= 0:
                    del counts[key]

    def check_room(self, org_id: str, call_id: str) -> None:
        """429 when the call, the organization or the node has as many listeners as it may."""
        per_call = self.settings.max_listeners_per_call
        per_organization = self.settings.max_listeners_per_organization
        per_node = self.settings.max_listeners
        if self._by_call[call_id] >= per_call:
            refused = f"this call has {per_call} listeners, its most"
        elif self._by_organization[org_id] >= per_organization:
            refused = f"this organization has {per_organization} listeners, its most"
        elif self.listeners >= per_node:
            refused = f"this node has {per_node} listeners, its most"
        else:
            refused = ""
        if refused:
            raise RateLimited(
                f"{refused}; close one or retry later",
                error="Too many listeners",
                retry_after_seconds=LISTEN_RETRY_SECONDS,
            )

    def hello(self, call: Call, listener: Listener) -> dict[str, object]:
        """The stream's first message: what the binary frames that follow hold."""
        return {
            "type": "hello",
            "call_id": call.id,
            "node": self._node_id,
            "encoding": SAMPLE_FORMAT,
            "sample_rate": listener.sample_rate,
            "channels": [CHANNEL_NAMES[CALLER], CHANNEL_NAMES[ASSISTANT]],
            "header_bytes": HEADER.size,
            "frame_ms": FRAME_MS,
            "max_backlog_ms": self.settings.max_backlog_ms,
            "supervisor_extension": self.settings.supervisor_extension or None,
        }

    def end_all(self, reason: str) -> None:
        """The node is shutting down: every listener ends (after what it has queued)."""
        for listener in list(self._open):
            listener.end(reason)
