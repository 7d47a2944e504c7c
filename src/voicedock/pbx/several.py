"""``SeveralPbxs``: several PBX servers presented to the call engine as one ``Pbx``.

``[[pbx.asterisk.servers]]`` lists the servers by name; the composition root builds one adapter
per server (``pbx/asterisk/servers.py``) and hands them here. Each call lives on one server:

* an outbound call on the server of its trunk (``OriginateRequest.pbx``; the first server
  when it names none), an inbound call on the server that reported it (``InboundCall.pbx`` is
  set here before the engine sees it), a call of a previous run on the server stored with it
  (``locate``, from ``calls/recovery``);
* its commands (hang up, transfer, media, adopt, leftovers) go to that server; those of a call
  no server is known for go to every server that can take them (a hang-up is idempotent);
* every server's events reach the one sink. A restart one server reports (``PBX_RESTARTED``
  without a call id) becomes one ``PBX_RESTARTED`` for each call on that server: the calls on
  the other servers go on.

A server that is down or unreachable fails only its own calls' commands; ``health`` reports
each server (``PbxHealth.servers``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import TYPE_CHECKING

from voicedock.errors import PbxError, PbxUnavailable
from voicedock.logs import pbx_context
from voicedock.pbx.base import (
    DrainingPbx,
    DtmfPbx,
    InboundAway,
    InboundCall,
    InboundHandler,
    InboundPbx,
    LeftoverPbx,
    LiveNodesPbx,
    MediaAcceptingPbx,
    MediaEndpoint,
    MediaPbx,
    OriginateRequest,
    Pbx,
    PbxEvent,
    PbxEventKind,
    PbxEventSink,
    PbxHealth,
    ResumablePbx,
    TransferTarget,
)
from voicedock.pbx.call_servers import CallServers

if TYPE_CHECKING:
    from voicedock.media.call_media import CallMedia

log = logging.getLogger("voicedock.pbx.several")


class SeveralPbxs:
    """The ``Pbx`` (and ``MediaPbx``, ``LeftoverPbx``, ``ResumablePbx``, ``RoutingPbx``) of
    several named servers; the first is where a request naming no server goes."""

    def __init__(self, servers: Mapping[str, Pbx]) -> None:
        if not servers:
            raise ValueError("SeveralPbxs needs at least one server")
        self._servers = dict(servers)
        self._default = next(iter(self._servers))
        self._where = CallServers(self._servers)  # each call's server (``call_servers.py``)

    @property
    def servers(self) -> Mapping[str, Pbx]:
        return self._servers

    def server_of(self, call_id: str) -> str | None:
        """The name of the server carrying the call, if known."""
        return self._where.of(call_id)

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self, sink: PbxEventSink) -> None:
        """Connect every server; one that cannot be reached now is logged and keeps trying on
        its own (as a single adapter does): the others serve meanwhile."""
        async with asyncio.TaskGroup() as tg:
            for name in self._servers:
                tg.create_task(self._start_one(name, sink))

    async def _start_one(self, name: str, sink: PbxEventSink) -> None:
        async def on_event(event: PbxEvent) -> None:
            await self._on_event(name, event, sink)

        try:
            with pbx_context(name):  # the adapter's tasks log the server's name
                await self._servers[name].start(on_event)
        except PbxError as exc:
            log.warning("PBX %s not reachable at start-up: %s", name, exc)

    async def aclose(self) -> None:
        """Close every server (each one's ``aclose`` is idempotent), even if one fails."""
        errors: list[BaseException] = []
        for pbx in self._servers.values():
            try:
                await pbx.aclose()
            except Exception as exc:  # noqa: BLE001 - the others close all the same
                errors.append(exc)
        if errors:
            raise errors[0]

    def set_inbound_handler(self, handler: InboundHandler) -> None:
        for name, pbx in self._servers.items():
            if isinstance(pbx, InboundPbx):
                pbx.set_inbound_handler(self._inbound_of(name, handler))

    def _inbound_of(self, name: str, handler: InboundHandler) -> InboundHandler:
        async def from_server(call: InboundCall) -> str | None:
            call_id = await handler(replace(call, pbx=name))
            if call_id is not None:
                self._where.place(call_id, name)
            return call_id

        return from_server

    def turn_inbound_away(self, away: InboundAway | None) -> None:
        """The node drains (or no longer): every server's new inbound calls go elsewhere."""
        for pbx in self._servers.values():
            if isinstance(pbx, DrainingPbx):
                pbx.turn_inbound_away(away)

    async def set_live_nodes(self, node_ids: list[str], draining: Collection[str] = ()) -> None:
        """The nodes whose lease is alive and that do not drain (``draining``: the live ones
        that do), told to every server that shares inbound calls among them
        (``asterisk.node_apps``); a server that is down gets it at its connect."""
        for name, pbx in self._servers.items():
            if isinstance(pbx, LiveNodesPbx):
                with pbx_context(name):
                    await pbx.set_live_nodes(node_ids, draining)

    def media_endpoint(self) -> MediaEndpoint | None:
        """Client media mode: the one endpoint every server's media legs dial (a connection
        names its call); ``PbxError`` if the servers were built with endpoints of their own."""
        endpoints = {
            id(endpoint): endpoint
            for pbx in self._servers.values()
            if isinstance(pbx, MediaAcceptingPbx) and (endpoint := pbx.media_endpoint()) is not None
        }
        if len(endpoints) > 1:
            raise PbxError("the servers' media legs must share voicedock's one media endpoint")
        return next(iter(endpoints.values()), None)

    # --- events -----------------------------------------------------------------------------

    async def _on_event(self, name: str, event: PbxEvent, sink: PbxEventSink) -> None:
        if event.kind is PbxEventKind.PBX_RESTARTED and not event.call_id:
            lost = self._where.carried_by(name)
            log.warning("PBX %s restarted: failing its %d call(s)", name, len(lost))
            for call_id in lost:
                self._where.forget(call_id)
                await sink(PbxEvent(call_id, PbxEventKind.PBX_RESTARTED))
            return
        self._where.reported(name, event)
        await sink(event)

    # --- health -----------------------------------------------------------------------------

    def health(self) -> PbxHealth:
        servers = {name: pbx.health() for name, pbx in self._servers.items()}
        links = {
            f"{name}.{link}": up for name, h in servers.items() for link, up in h.links.items()
        }
        reconnects = {
            f"{name}.{link}": n for name, h in servers.items() for link, n in h.reconnects.items()
        }
        kinds = {h.kind for h in servers.values()}
        kind = kinds.pop() if len(kinds) == 1 else "several"
        return PbxHealth(kind, links, servers, reconnects)

    def call_health(self, call_id: str) -> PbxHealth:
        name = self._where.of(call_id)
        return self.health() if name is None else self._servers[name].health()

    # --- routing ----------------------------------------------------------------------------

    def locate(self, call_id: str, pbx: str | None) -> None:
        self._where.locate(call_id, pbx)

    # --- the Pbx ----------------------------------------------------------------------------

    async def originate(self, request: OriginateRequest) -> None:
        name = request.pbx or self._default
        pbx = self._servers.get(name)
        if pbx is None:
            raise PbxUnavailable(f"PBX {name!r} is not configured")
        self._where.place(request.call_id, name)
        try:
            with pbx_context(name):
                await pbx.originate(request)
        except BaseException:
            # Not placed (or its outcome unknown: the server's own reconcile reports it, and a
            # hang-up of a call no server is known for reaches every server).
            self._where.forget(request.call_id)
            raise

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        """On the call's server; when not known, on every server (``PbxError`` only when
        none of them could be asked)."""
        candidates = self._where.candidates(call_id)
        failures: list[PbxError] = []
        for name in candidates:
            try:
                with pbx_context(name):
                    await self._servers[name].hangup(call_id, reason)
            except PbxError as exc:
                failures.append(exc)
        if len(failures) == len(candidates):
            raise failures[0]

    async def transfer(self, call_id: str, target: TransferTarget) -> None:
        name = self._where.carrier(call_id)
        with pbx_context(name):
            await self._servers[name].transfer(call_id, target)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        name = self._where.carrier(call_id)
        pbx = self._servers[name]
        if not isinstance(pbx, DtmfPbx):
            raise PbxError("this PBX cannot send DTMF")
        with pbx_context(name):
            await pbx.send_dtmf(call_id, digits)

    async def live_call_ids(self) -> set[str]:
        """The calls of every server that answers; ``PbxError`` only when none does."""
        results = await asyncio.gather(
            *(pbx.live_call_ids() for pbx in self._servers.values()), return_exceptions=True
        )
        live: set[str] = set()
        failures: list[PbxError] = []
        for result in results:
            if isinstance(result, PbxError):
                failures.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                live |= result
        if len(failures) == len(results):
            raise failures[0]
        return live

    def call_media(
        self, call_id: str, *, media_format: str = "ulaw"
    ) -> AbstractAsyncContextManager[CallMedia]:
        pbx = self._servers[self._where.carrier(call_id)]
        if not isinstance(pbx, MediaPbx):
            raise PbxError("this PBX carries no media")
        return pbx.call_media(call_id, media_format=media_format)

    async def hang_up_leftovers(self, calls: Mapping[str, str | None]) -> set[str]:
        """Each call's leftovers on its server (on every server when not known); a server
        that cannot be asked keeps its calls listed as left."""
        left: set[str] = set()
        for name, pbx in self._servers.items():
            mine = self._where.on(name, calls)
            if not mine:
                continue
            try:
                with pbx_context(name):
                    if isinstance(pbx, LeftoverPbx):
                        left |= await pbx.hang_up_leftovers(mine)
                    else:
                        for call_id in mine:
                            await pbx.hangup(call_id, "normal")
            except PbxError as exc:
                log.warning("PBX %s: leftover legs not hung up: %s", name, exc)
                left |= set(mine)
        return left

    async def adopt_call(self, call_id: str, remote_ref: str | None) -> bool:
        """Adopted by the call's server; when not known, by the first server that has it
        (``PbxError`` when none has it and one of them could not tell)."""
        known = self._where.of(call_id)
        failures: list[PbxError] = []
        for name, pbx in self._servers.items():
            if known not in (name, None) or not isinstance(pbx, ResumablePbx):
                continue
            try:
                with pbx_context(name):
                    adopted = await pbx.adopt_call(call_id, remote_ref)
            except PbxError as exc:
                if known is not None:
                    raise
                failures.append(exc)
                continue
            if adopted:
                self._where.place(call_id, name)
                return True
        if failures:
            raise failures[0]
        return False
