"""``AsteriskPbx``: the ``Pbx`` seam implemented with ARI (always) and AMI (optional).

Calls are placed with our call id as the Asterisk channel id, so the PBX itself refuses a
duplicate, and go straight into the ``voicedock`` Stasis app (``originate``); what happens to a
call comes back as ARI and AMI events (``call_events``), reported once per call; a call ends
as ``hangups`` says (its media legs and bridges deleted with it, ``media/legs``); callers the
dialplan hands to our app are ``inbound``'s, transfers ``transfers/``'s, and what a previous
run left ``leftovers``'.

After every ARI/AMI (re)connect the calls we believe live are reconciled against the PBX's
channel list (``pbx/reconcile``, with ``restarts``: "reconciled" HANGUP for the missing ones);
a changed Asterisk start time means the PBX restarted: whatever is left of the calls placed
before it is hung up, then one PBX_RESTARTED and a "pbx-restart" HANGUP for each of them. No
originate goes out on a connection that reconcile has not settled yet, so a call placed on the
fresh Asterisk is never taken for one it lost; each leg carries the boot it was placed under,
and an originate that waited across a restart is refused, never sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from voicedock.config import AsteriskSettings
from voicedock.errors import PbxError
from voicedock.pbx.adapter import PbxAdapter
from voicedock.pbx.asterisk.ami.client import AmiClient
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.call_events import AsteriskEvents
from voicedock.pbx.asterisk.hangups import AsteriskHangups
from voicedock.pbx.asterisk.inbound import AsteriskInbound
from voicedock.pbx.asterisk.leftovers import AsteriskLeftovers
from voicedock.pbx.asterisk.media.choice import choose_transport
from voicedock.pbx.asterisk.media.legs import AsteriskMedia, MediaLeg
from voicedock.pbx.asterisk.media.transports import MediaTransports, SharedMedia
from voicedock.pbx.asterisk.node_apps import NodeApps
from voicedock.pbx.asterisk.originate import Originator
from voicedock.pbx.asterisk.restarts import NOT_READY, AsteriskRestarts
from voicedock.pbx.asterisk.server_check import describe
from voicedock.pbx.asterisk.server_info import AsteriskServerInfo
from voicedock.pbx.asterisk.transfers.context import TransferSettings
from voicedock.pbx.asterisk.transfers.native import AsteriskTransfers
from voicedock.pbx.base import OriginateRequest, PbxHealth, TransferTarget, WarmDialogue
from voicedock.pbx.reconcile import Reconciler

if TYPE_CHECKING:
    from voicedock.media.call_media import CallMedia
    from voicedock.pbx.asterisk.media.acceptor import MediaAcceptor

log = logging.getLogger("voicedock.pbx.asterisk.pbx")


class AsteriskPbx(PbxAdapter):
    def __init__(
        self,
        settings: AsteriskSettings,
        *,
        use_ami: bool | None = None,
        register_timeout: float = 2.0,
        ari: AriClient | None = None,
        ami: AmiClient | None = None,
        warm_dialogue: WarmDialogue | None = None,
        node_apps: NodeApps | None = None,
        shared_media: SharedMedia | None = None,
    ) -> None:
        """``warm_dialogue``: what a warm transfer says to the agent and how it hears their
        answer (``calls/transfers``); without it, a beep and digits alone. ``node_apps``: the
        live nodes' applications to publish for the inbound dialplan (``asterisk.node_apps``;
        ``settings.app`` is this node's own). ``shared_media``: where the media legs of
        several servers arrive together; by default this server's own."""
        super().__init__(log)
        self._settings = settings
        self._node_apps = node_apps
        use_ami = settings.originate_via == "ami" if use_ami is None else use_ami
        self.ari = ari or AriClient(settings)
        self.ami: AmiClient | None = (ami or AmiClient(settings)) if use_ami else None
        self._media = self._media_legs(shared_media or SharedMedia())
        self.server: AsteriskServerInfo | None = None
        """The server as ARI last described it (version, modules), read at each connect."""
        self.transfers = AsteriskTransfers(
            self.ari,
            self._calls,
            TransferSettings.from_config(settings),
            emit=self._reports.emit,
            spawn=self._spawn,
            release_media=self._media.release,
            transports=self._media.transports,
            dialogue=warm_dialogue,
        )
        self._build_call_parts(register_timeout)

    def _media_legs(self, shared: SharedMedia) -> AsteriskMedia:
        """The calls' media legs, travelling as the server allows; client media mode gets an
        acceptor of its own unless the node's is shared."""
        settings, acceptor = self._settings, shared.acceptor
        if settings.media_connection != "client":
            acceptor = None
        elif acceptor is None:
            from voicedock.pbx.asterisk.media.acceptor import MediaAcceptor  # the media stack

            acceptor = MediaAcceptor()
        transports = MediaTransports(
            settings,
            self.ari,
            acceptor=acceptor,
            audiosocket=shared.audiosocket,
            rtp_ports=shared.rtp_ports,
        )
        return AsteriskMedia(self.ari, settings.app, self._calls, self._spawn, transports)

    def _build_call_parts(self, register_timeout: float) -> None:
        """What follows the calls: their hangups, the server's restarts and the reconcile
        after each connect, originates, inbound calls, a previous run's leftovers and the
        events that reach each of them."""
        app, calls, reports, spawn = self._settings.app, self._calls, self._reports, self._spawn
        self._hangups = AsteriskHangups(self.ari, calls, reports, self._media, spawn)
        self._restarts = AsteriskRestarts(self.ari, self.ami, self._hangups)
        self._reconciler = Reconciler(
            self._restarts,
            calls,
            reports,
            spawn,
            pbx_name="Asterisk",
            not_ready=NOT_READY,
            log=log,
        )
        self._originator = Originator(
            self.ari,
            self.ami,
            calls,
            self._reconciler,
            reports.emit,
            spawn,
            app=app,
            register_timeout=register_timeout,
        )
        self._inbound_calls = AsteriskInbound(
            self.ari,
            calls,
            reports,
            self._reconciler,
            self._hangups,
            self._offer_inbound,
            spawn,
            register_timeout=register_timeout,
            away=self.inbound_away,
        )
        self._leftovers = AsteriskLeftovers(
            self.ari,
            calls,
            self._reconciler,
            self._media,
            app=app,
            register_timeout=register_timeout,
        )
        self._events = AsteriskEvents(
            calls,
            reports,
            self._hangups,
            self._inbound_calls,
            self.transfers,
            self._media,
            app=app,
        )

    # --- lifecycle --------------------------------------------------------------------------

    async def set_live_nodes(self, node_ids: list[str], draining: Collection[str] = ()) -> None:
        """The nodes whose lease is alive and that do not drain: their applications receive
        inbound calls (``asterisk.node_apps``); published now if connected, else at the
        connect. Callers left waiting in a stopped node's application are handed to a live
        one."""
        if self._node_apps is not None:
            self._node_apps.set_live_nodes(node_ids, draining)
            await self._node_apps.publish(self.ari)
            await self._node_apps.hand_back_waiting(self.ari)

    async def _connect(self) -> None:
        self._exit.push_async_callback(self._media.transports.aclose)
        self._exit.push_async_callback(self.ari.aclose)
        await self.ari.start(
            self._events.on_ari_event,
            on_connected=self._reconcile_connected,
            on_disconnected=self._hangups.link_lost,
            on_arrival=self._events.on_arrival,
        )
        if self.ami is not None:
            self._exit.push_async_callback(self.ami.aclose)
            await self.ami.start(self._events.on_ami_event, on_connected=self._reconcile_connected)

    def health(self) -> PbxHealth:
        """ARI's Stasis app registered (events, media, ARI originate) and, when calls are
        originated through AMI, the AMI login."""
        links = {"ari": self.ari.registered and not self._closed}
        reconnects = {"ari": max(self.ari.connect_count - 1, 0)}
        if self.ami is not None:
            links["ami"] = self.ami.connected and not self._closed
            reconnects["ami"] = max(self.ami.connect_count - 1, 0)
        return PbxHealth("asterisk", links, reconnects=reconnects)

    # --- calls ------------------------------------------------------------------------------

    async def originate(self, request: OriginateRequest) -> None:
        await self._originator.originate(request)

    async def originate_test_call(self, leg_id: str, token: str) -> None:
        """``RehearsalPbx``: a Local channel pair (``asterisk.originate``)."""
        await self._originator.originate_test_call(leg_id, token)

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        await self._hangups.hang_up(call_id, reason)

    async def transfer(self, call_id: str, target: TransferTarget) -> None:
        """Blind or warm (``asterisk.transfer``); returns once started. The outcome comes as
        TRANSFERRED (the target answered / accepted) or TRANSFER_FAILED (caller is back)."""
        legs = self._calls.get(call_id)
        if legs is None or legs.ended:
            raise PbxError("no live call with this id")
        # A transfer at the answer must not overtake the media's set-up: it acts on the caller
        # in the call's bridge (warm) or takes the caller out of Stasis (blind).
        await self._media.settled(call_id)
        if legs.ended:  # hung up meanwhile: its hangup is the report
            raise PbxError("no live call with this id")
        await self.transfers.start(legs, target)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        """DTMF to the caller's channel (ARI ``POST /channels/{id}/dtmf``)."""
        legs = self._calls.get(call_id)
        if legs is None or legs.ended:
            raise PbxError("no live call with this id")
        await self.ari.send_dtmf(call_id, digits)

    async def live_call_ids(self) -> set[str]:
        """Call ids of our calls the PBX still has, plus ids of channels we do not know."""
        live: set[str] = set()
        for channel in await self.ari.list_channels():
            legs = self._calls.by_channel(channel.id)
            live.add(legs.call_id if legs is not None else channel.id)
        return live

    async def hang_up_leftovers(self, calls: Mapping[str, str | None]) -> set[str]:
        """``LeftoverPbx``: see ``asterisk.leftovers``."""
        return await self._leftovers.hang_up_leftovers(calls)

    async def adopt_call(self, call_id: str, remote_ref: str | None) -> bool:
        """``ResumablePbx``: see ``asterisk.leftovers``."""
        return await self._leftovers.adopt_call(call_id, remote_ref)

    # --- media ------------------------------------------------------------------------------

    async def open_media(self, call_id: str, *, media_format: str = "ulaw") -> MediaLeg:
        """The call's bridge and a chan_websocket leg the caller connects itself (a leg driven
        by hand: ``AsteriskMedia.open_websocket``)."""
        return await self._media.open_websocket(call_id, media_format=media_format)

    def call_media(
        self, call_id: str, *, media_format: str = "ulaw"
    ) -> AbstractAsyncContextManager[CallMedia]:
        """``MediaPbx``: the answered call's audio over the server's media transport
        (chan_websocket, RTP or AudioSocket: ``media/transports``); on exit the media leg and
        the bridge go, the call stays up."""
        return self._media.session(call_id, media_format=media_format)

    def media_endpoint(self) -> MediaAcceptor | None:
        """``MediaAcceptingPbx``: client mode, where Asterisk's media websockets arrive (for
        voicedock to serve on ``/media``); ``None`` in server mode."""
        return self._media.acceptor

    async def _read_server(self) -> None:
        """What the server is now (an upgrade or a module loaded since shows at the next
        connect) and so how its calls' audio travels; one log line when that changes."""
        try:
            info = await self.ari.server_info()
        except PbxError as exc:
            named = f" {self._settings.name}" if self._settings.name else ""
            log.warning("asterisk%s: cannot read its version and modules: %s", named, exc)
            return
        choice = choose_transport(self._settings.media_transport, info)
        transports = self._media.transports
        if transports.choice != choice:
            try:
                public = await transports.public_host()
            except (OSError, PbxError) as exc:
                public = f"(unknown: {exc})"
            level = logging.INFO if choice.transport is not None else logging.ERROR
            log.log(level, "%s", describe(self._settings, info, choice, public))
        self.server, transports.choice = info, choice

    # --- reconcile --------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Settle every call we believe live against Asterisk (``pbx/reconcile``)."""
        await self._reconciler.reconcile()

    async def _reconcile_connected(self) -> None:
        """The (re)connect hook: reconcile, retried while this connection stays current (no
        originate goes out until it succeeded)."""
        links = self._restarts.links()
        await self._read_server()  # before any call of this connection opens its media
        for _ in range(40):
            try:
                await self.reconcile()
            except PbxError as exc:
                if self._closed or self._restarts.links() != links:
                    return  # a newer connection runs its own
                log.warning("reconcile after connect failed (%s); retrying", type(exc).__name__)
            else:
                if self._node_apps is not None:  # a restarted Asterisk has lost the list
                    await self._node_apps.publish(self.ari)
                    serving = self._inbound_calls.serving
                    self._spawn(self._node_apps.take_back_own(self.ari, serving))
                return
            await asyncio.sleep(0.25)
