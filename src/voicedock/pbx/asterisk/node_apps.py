"""Each node's own ARI application, and the list of live nodes' applications that Asterisk hands
inbound calls to.

Asterisk keeps one events websocket per Stasis application (a second one replaces the first),
so nodes sharing a database each register their own: ``<[pbx.asterisk] app>-<node id>``. A
single node on SQLite keeps ``app`` itself, as before nodes existed.

The nodes keep the global variable ``VOICEDOCK_APPS`` current over ARI (``POST
/asterisk/variable``): the applications of the nodes whose lease is alive, ``&``-separated,
written after each (re)connect and at each lease renewal; a node that drains leaves itself out
(``calls/nodes/drain.py``), and the others leave it out too. The production dialplan's
``voicedock-node`` context (dialplan/asterisk/extensions_voicedock.conf) tries them in turn
from a random one: ``Stasis()`` of an application no node is connected to fails at once
(``STASISSTATUS=FAILED``) and the next is tried, so each inbound call enters exactly one
connected node's application. A dead node's application leaves the list when its lease runs
out. (Asterisk blocks writes to ``DB()`` from ARI as a "dangerous function", so the list is a
global variable, not AstDB.)

A caller already in a node's application when that node stopped (killed between the caller's
``StasisStart`` and its answer, or a host gone without closing its websocket, which Asterisk
keeps taking for connected) waits there unanswered: Asterisk neither answers nor moves it. When
an application leaves the list, the first live node (the lowest application name) hands each
caller still waiting unanswered in it back to ``voicedock-node`` (ARI ``continue``), which
gives it to a live node. A node that starts again under the same id (its application comes back
before any other node noticed it gone, or it is the only node) does the same with the callers
waiting in its own application that it never saw enter: no ``StasisStart`` comes for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from voicedock.config import AsteriskSettings, Settings
from voicedock.errors import ConfigError, PbxError
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.ari.events import AriChannel
from voicedock.validation import is_token

log = logging.getLogger("voicedock.pbx.asterisk.node_apps")

APPS_VARIABLE = "VOICEDOCK_APPS"  # global: the live nodes' applications
APP_VARIABLE = "VOICEDOCK_APP"  # on a channel: the application of the node that serves it
SEPARATOR = "&"
NODE_CONTEXT = "voicedock-node"  # the dialplan context that hands a caller to one live node
_APP_MAX = 80  # an application name also travels in the events URL and in dialplan data
# How long a caller listed in our application may take to reach us as a StasisStart event
# (the list and the events travel apart) before it counts as left by an earlier run.
EVENT_SETTLE_S = 1.0


class NodeAppError(ValueError):
    """An application name voicedock will not send to Asterisk."""


def node_app(base: str, node_id: str, *, several_nodes: bool) -> str:
    """The node's ARI application: ``base`` alone for a single node (SQLite), else
    ``<base>-<node id>``."""
    app = f"{base}-{node_id}" if several_nodes else base
    if not is_token(app) or len(app) > _APP_MAX:
        raise NodeAppError(f"ARI application {app!r}: 1-{_APP_MAX} letters, digits, '_.-'")
    return app


def apps_value(apps: Iterable[str]) -> str:
    """``VOICEDOCK_APPS``'s value: the applications, sorted, ``&``-separated."""
    unique = sorted(set(apps))
    for app in unique:
        if not is_token(app) or len(app) > _APP_MAX:
            raise NodeAppError(f"ARI application {app!r} is not a plain name")
    return SEPARATOR.join(unique)


def waits_unanswered(channel: AriChannel, apps: set[str]) -> bool:
    """An inbound caller not answered, in the Stasis of one of ``apps`` that
    ``voicedock-node`` gave it to."""
    if channel.state == "Up":
        return False
    app, _, args = channel.dialplan_app_data.partition(",")
    return (
        channel.dialplan_app_name == "Stasis"
        and channel.dialplan_context == NODE_CONTEXT
        and app in apps
        and args.startswith("inbound,")
    )


class NodeApps:
    """This node's application and the live nodes' list it publishes to Asterisk."""

    def __init__(self, base: str, node_id: str, *, several_nodes: bool) -> None:
        self.base = base
        self.several_nodes = several_nodes
        self.own = node_app(base, node_id, several_nodes=several_nodes)
        self._apps = apps_value([self.own])
        self._dropped: set[str] = set()  # left the list; their waiting callers not handed back

    def set_live_nodes(self, node_ids: Iterable[str], draining: Iterable[str] = ()) -> None:
        """The nodes that take inbound calls: those whose lease is alive, but the ``draining``
        ones (this one too, then: ``calls/nodes/drain.py``), which send on or reject each
        caller that still reaches them themselves."""
        apps = [node_app(self.base, i, several_nodes=self.several_nodes) for i in node_ids]
        alive = {node_app(self.base, i, several_nodes=self.several_nodes) for i in draining}
        before = set(self._apps.split(SEPARATOR)) - {""}
        self._apps = apps_value(apps)
        now = set(self._apps.split(SEPARATOR)) - {""}
        self._dropped = (self._dropped | before) - now - alive - {self.own}

    @property
    def value(self) -> str:
        return self._apps

    @classmethod
    def of(cls, settings: Settings, server: AsteriskSettings | None = None) -> NodeApps:
        """This node's on ``server`` (default ``[pbx.asterisk]``), from its settings: several
        nodes share a PostgreSQL database, an SQLite one serves a single node."""
        several = not settings.database.url.lower().startswith("sqlite")
        base = (server or settings.pbx.asterisk).app
        try:
            return cls(base, settings.node.id, several_nodes=several)
        except NodeAppError as exc:
            raise ConfigError("pbx.asterisk.app", str(exc)) from None

    async def publish(self, ari: AriClient) -> bool:
        """Write the list into Asterisk while this node's application is registered; a failure
        is logged (the next renewal writes it again)."""
        if not ari.registered:
            return False
        params = {"variable": APPS_VARIABLE, "value": self._apps}
        try:
            await ari.request("POST", "/asterisk/variable", params=params)
        except PbxError as exc:
            log.warning("node applications not published to Asterisk (%s)", exc)
            return False
        return True

    async def hand_back_waiting(self, ari: AriClient) -> int:
        """The callers waiting unanswered in applications that left the list, handed back to
        ``voicedock-node`` (by the first live node only, so that one node moves each): how
        many."""
        if not self._dropped or not ari.registered:
            return 0
        dropped, self._dropped = self._dropped, set()
        if self.own != min(self._apps.split(SEPARATOR)):  # "" while this node drains
            return 0
        moved = 0
        try:
            for channel in await ari.list_channels():
                if is_token(channel.id) and waits_unanswered(channel, dropped):
                    await ari.continue_in_dialplan(channel.id, NODE_CONTEXT, "s")
                    moved += 1
        except PbxError as exc:  # gone meanwhile, or ARI down: the caller's dialplan goes on
            log.warning("waiting callers of stopped nodes not handed back (%s)", exc)
        if moved:
            log.warning(
                "%d inbound caller(s) waited in the application of a stopped node: handed to a "
                "live node",
                moved,
            )
        return moved

    async def take_back_own(
        self,
        ari: AriClient,
        serving: Callable[[], set[str]],
        *,
        settle_s: float = EVENT_SETTLE_S,
    ) -> int:
        """The callers waiting unanswered in this node's own application that this process does
        not serve (``serving()``: the channel ids it accepts or has accepted) — an earlier run
        under the same id stopped between their ``StasisStart`` and their answer — handed back
        to ``voicedock-node``, which gives each to a live node (this one, maybe) as a new
        ``StasisStart``: how many."""
        if not ari.registered:
            return 0
        try:
            waiting = {
                c.id
                for c in await ari.list_channels()
                if is_token(c.id) and waits_unanswered(c, {self.own})
            }
            if not waiting - serving():
                return 0
            await asyncio.sleep(settle_s)  # a caller just arriving reaches us meanwhile
            moved = 0
            for channel_id in sorted(waiting - serving()):
                try:
                    await ari.continue_in_dialplan(channel_id, NODE_CONTEXT, "s")
                except PbxError as exc:  # the caller left meanwhile
                    log.info("a waiting caller was not handed back (%s)", exc)
                else:
                    moved += 1
        except PbxError as exc:  # ARI down: the next connect looks again
            log.warning("callers waiting in this node's application not handed back (%s)", exc)
            return 0
        if moved:
            log.warning(
                "%d inbound caller(s) waited unanswered in this node's application from an "
                "earlier run: handed to a live node",
                moved,
            )
        return moved


__all__ = [
    "APPS_VARIABLE",
    "APP_VARIABLE",
    "EVENT_SETTLE_S",
    "NODE_CONTEXT",
    "NodeAppError",
    "NodeApps",
    "apps_value",
    "node_app",
    "waits_unanswered",
]
