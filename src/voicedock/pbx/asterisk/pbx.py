"""``AsteriskPbx``: the ``Pbx`` seam implemented with ARI (always) and AMI (optional).

Calls are placed with our call id as the Asterisk channel id, so the PBX itself refuses a
duplicate, and go straight into the ``voicedock`` Stasis app (ARI ``POST /channels`` or AMI
``Originate`` with ``Application: Stasis``). What happens to a call comes back as events:

* RINGING   ARI ``Dial`` RINGING / ``ChannelStateChange`` Ringing, or AMI DialState/Newstate;
* ANSWERED  ``StasisStart`` of the outbound leg (args ``outbound,<call id>``);
* HANGUP    ARI ``ChannelDestroyed`` or AMI ``Hangup`` (cause + tech_cause = SIP code), never
            ``ChannelHangupRequest`` (its cause is a flag when ``soft``). Reported once.

After every ARI/AMI (re)connect the calls we believe live are reconciled against the PBX's
channel list ("reconciled" HANGUP for the missing ones); a changed Asterisk start time means
the PBX restarted: whatever is left of the calls placed before it is hung up (checked against
the fresh PBX's channel list), then one PBX_RESTARTED and a "pbx-restart" HANGUP for each of
them. No originate goes out on a connection that reconcile has not settled yet, so a call
placed on the fresh Asterisk is never taken for one it lost; each leg carries the boot it was
placed under, and an originate that waited across a restart is refused, never sent.
When the remote leg goes, the media legs and bridges are deleted (``asterisk.media``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from voicedock.config import AsteriskSettings
from voicedock.domain.ids import is_call_id, mask_call_id
from voicedock.errors import PbxError, PbxUnavailable
from voicedock.pbx.adapter import ADOPT_SETTLE_WAIT, PbxAdapter
from voicedock.pbx.asterisk.ami.client import AmiClient
from voicedock.pbx.asterisk.ami.messages import (
    AmiEvent,
    AmiHangup,
    AmiRinging,
    AmiValueError,
    originate_action,
    pjsip_dial_string,
)
from voicedock.pbx.asterisk.ari.client import AriClient, AriHttpError
from voicedock.pbx.asterisk.ari.events import (
    ApplicationReplaced,
    AriChannel,
    AriEvent,
    ChannelDestroyed,
    ChannelStateChange,
    DialProgress,
    DtmfReceived,
    StasisEnd,
    StasisStart,
)
from voicedock.pbx.asterisk.media.legs import AsteriskMedia, MediaLeg, destroy_bridge, leg_id
from voicedock.pbx.asterisk.node_apps import NodeApps
from voicedock.pbx.asterisk.originate import watch_ami_originate
from voicedock.pbx.asterisk.transfers.context import TransferSettings
from voicedock.pbx.asterisk.transfers.native import AsteriskTransfers
from voicedock.pbx.base import (
    InboundCall,
    OriginateRequest,
    PbxHealth,
    TransferTarget,
    WarmDialogue,
)
from voicedock.pbx.legs import CallLegs
from voicedock.validation import is_e164, is_token

if TYPE_CHECKING:
    from voicedock.media.call_media import CallMedia
    from voicedock.pbx.asterisk.media.acceptor import MediaAcceptor

log = logging.getLogger("voicedock.pbx.asterisk.pbx")

# A hang-up of a call whose channel does not exist yet (an AMI Originate Asterisk has queued
# but not dialled) retries this often, this long, and meets the channel's first event.
_CHASE_INTERVAL = 0.1
_CHASE_FOR = 10.0
# What a call may hold besides the remote leg (``asterisk.media``, ``asterisk.transfers.warm`` ids).
_LEFTOVER_LEGS = ("media", "agent", "agentmedia")
_LEFTOVER_BRIDGES = ("bridge", "warm")
_NOT_READY = (
    "Asterisk is not ready: ARI app not registered, AMI down, or the reconnect not reconciled yet"
)


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
        media_acceptor: MediaAcceptor | None = None,
    ) -> None:
        """``warm_dialogue``: what a warm transfer says to the agent and how it hears their
        answer (``calls/transfers``); without it, a beep and digits alone. ``node_apps``: the
        live nodes' applications to publish for the inbound dialplan (``asterisk.node_apps``;
        ``settings.app`` is this node's own). ``media_acceptor``: client media mode
        (``media_connection = "client"``), where the media legs of several servers arrive
        together; by default one of its own."""
        super().__init__("Asterisk", log)
        self._settings = settings
        self._node_apps = node_apps
        self._use_ami = settings.originate_via == "ami" if use_ami is None else use_ami
        self._register_timeout = register_timeout
        self.ari = ari or AriClient(settings)
        self.ami: AmiClient | None = (ami or AmiClient(settings)) if self._use_ami else None
        self._startup_time: str | None = None  # Asterisk's, as reconcile last recorded it
        self._startup_seen: str | None = None  # as the restart check saw it
        # Outbound calls hung up before their channel existed: hung up when it appears.
        self._unwanted: set[str] = set()
        # Inbound callers between their StasisStart and their place in ``_calls`` (or hang-up).
        self._accepting: set[str] = set()
        self._media = AsteriskMedia(self.ari, settings.app, self._calls, self._spawn)
        self._media.client_connection = settings.media_client_connection
        if settings.media_connection == "client":
            from voicedock.pbx.asterisk.media.acceptor import MediaAcceptor  # the media stack

            self._media.acceptor = media_acceptor or MediaAcceptor()
        self.transfers = AsteriskTransfers(
            self.ari,
            self._calls,
            TransferSettings.from_config(settings),
            emit=self._emit,
            spawn=self._spawn,
            release_media=self._media.release,
            dialogue=warm_dialogue,
        )

    # --- lifecycle --------------------------------------------------------------------------

    async def set_live_nodes(self, node_ids: list[str]) -> None:
        """The nodes whose lease is alive: their applications receive inbound calls
        (``asterisk.node_apps``); published now if connected, else at the connect. Callers
        left waiting in a stopped node's application are handed to a live one."""
        if self._node_apps is not None:
            self._node_apps.set_live_nodes(node_ids)
            await self._node_apps.publish(self.ari)
            await self._node_apps.hand_back_waiting(self.ari)

    async def _connect(self) -> None:
        self._exit.push_async_callback(self.ari.aclose)
        await self.ari.start(
            self._on_ari_event,
            on_connected=self._reconcile_connected,
            on_arrival=self._on_ari_arrival,
        )
        if self.ami is not None:
            self._exit.push_async_callback(self.ami.aclose)
            await self.ami.start(self._on_ami_event, on_connected=self._reconcile_connected)

    def health(self) -> PbxHealth:
        """ARI's Stasis app registered (events, media, ARI originate) and, when calls are
        originated through AMI, the AMI login."""
        links = {"ari": self.ari.registered and not self._closed}
        reconnects = {"ari": max(self.ari.connect_count - 1, 0)}
        if self.ami is not None:
            links["ami"] = self.ami.connected and not self._closed
            reconnects["ami"] = max(self.ami.connect_count - 1, 0)
        return PbxHealth("asterisk", links, reconnects=reconnects)

    # --- outbound ---------------------------------------------------------------------------

    async def originate(self, request: OriginateRequest) -> None:
        # Validate everything before any I/O: nothing unsafe may reach the PBX.
        if not is_call_id(request.call_id):
            raise AmiValueError("call id must be a voicedock call id")
        if not is_e164(request.caller_id):
            raise AmiValueError("caller id must be E.164")
        endpoint = pjsip_dial_string(request.destination, request.trunk_endpoint)
        existing = self._calls.get(request.call_id)
        if existing is not None and not existing.ended:
            raise PbxError("a call with this id is already in progress")
        # Originating into an unregistered Stasis app answers the callee and drops them; one
        # into an Asterisk not yet checked for a restart would be taken for a lost call.
        boot = await self._wait_settled(self._register_timeout, _NOT_READY)
        if self.ami is not None:
            headers = originate_action(
                call_id=request.call_id,
                destination=request.destination,
                caller_id=request.caller_id,
                endpoint=request.trunk_endpoint,
                app=self._settings.app,
                timeout_seconds=request.timeout_seconds,
            )
            self._calls.add(request.call_id, request.call_id, "outbound").boot = boot
            try:
                outcome = await self.ami.originate(headers)
            except PbxUnavailable:
                raise  # outcome unknown: the registry entry stays, reconcile settles it
            except PbxError:
                self._calls.forget(request.call_id)
                raise
            self._spawn(watch_ami_originate(self._calls, self._emit, request, outcome))
            return
        self._calls.add(request.call_id, request.call_id, "outbound").boot = boot
        try:
            await self.ari.originate(
                endpoint=endpoint,
                app_args=f"outbound,{request.call_id}",
                caller_id=request.caller_id,
                channel_id=request.call_id,
                timeout_seconds=request.timeout_seconds,
            )
        except AriHttpError:
            self._calls.forget(request.call_id)  # refused: no channel exists
            raise

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        legs = self._calls.get(call_id)
        channels = legs.owned_channels() if legs is not None else [call_id]
        bridges = sorted(legs.bridges) if legs is not None else []
        async with asyncio.TaskGroup() as tg:
            deleted = [tg.create_task(self.ari.hangup_channel(c, reason)) for c in channels]
        for bridge in bridges:
            await destroy_bridge(self.ari, bridge)
        main_gone = bool(channels) and channels[0] == call_id and not deleted[0].result()
        if legs is not None and legs.direction == "outbound" and main_gone and _pending(legs):
            # Originated, but Asterisk has not created the channel yet (AMI Originate runs in
            # a thread of its own): a cancel must still reach it.
            self._unwanted.add(call_id)
            self._spawn(self._chase(call_id, reason))

    async def _chase(self, call_id: str, reason: str) -> None:
        """Hang up the unwanted call's channel once it exists (or until the call is over)."""
        try:
            async with asyncio.timeout(_CHASE_FOR):
                while call_id in self._unwanted:
                    legs = self._calls.get(call_id)
                    if legs is None or not _pending(legs):
                        return
                    if await self.ari.hangup_channel(legs.main_channel, reason):
                        log.info("call %s: hung up once its channel existed", mask_call_id(call_id))
                        return
                    await asyncio.sleep(_CHASE_INTERVAL)
        except TimeoutError:
            log.warning("call %s: its channel never appeared to be hung up", mask_call_id(call_id))
        finally:
            self._unwanted.discard(call_id)

    async def _hang_up_unwanted(self, call_id: str) -> None:
        """A channel event of a call hung up before its channel existed: hang it up now."""
        if call_id in self._unwanted:
            self._unwanted.discard(call_id)
            legs = self._calls.get(call_id)
            if legs is not None and not legs.ended:
                await self.ari.hangup_channel(legs.main_channel, "normal")

    async def transfer(self, call_id: str, target: TransferTarget) -> None:
        """Blind or warm (``asterisk.transfer``); returns once started. The outcome comes as
        TRANSFERRED (the target answered / accepted) or TRANSFER_FAILED (caller is back)."""
        legs = self._calls.get(call_id)
        if legs is None or legs.ended:
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
            channel_id = str(channel.get("id", ""))
            legs = self._calls.by_channel(channel_id)
            live.add(legs.call_id if legs is not None else channel_id)
        return live

    async def hang_up_leftovers(self, calls: Mapping[str, str | None]) -> set[str]:
        """``LeftoverPbx``: DELETE what a previous run left of these calls (the remote leg:
        the call id for outbound calls, the stored channel id for inbound ones; the media,
        warm-transfer legs and bridges named after the call id), then check ARI's lists.
        Returns the call ids of which a channel or bridge is still listed."""
        channels: dict[str, str] = {}
        bridges: dict[str, str] = {}
        for call_id, remote in calls.items():
            if self._calls.get(call_id) is not None:
                continue  # a call of this run, not a leftover
            for channel in (remote or call_id, *(leg_id(call_id, s) for s in _LEFTOVER_LEGS)):
                channels[channel] = call_id
            for bridge in (leg_id(call_id, s) for s in _LEFTOVER_BRIDGES):
                bridges[bridge] = call_id
        for channel in channels:
            await self.ari.hangup_channel(channel, "normal")  # 404: not there, fine
        for bridge in bridges:
            await destroy_bridge(self.ari, bridge)
        listed = {str(c.get("id", "")) for c in await self.ari.list_channels()}
        found = await self.ari.request("GET", "/bridges")
        if isinstance(found, list):
            listed |= {str(b.get("id", "")) for b in found if isinstance(b, dict)}
        return {call_id for leg, call_id in (channels | bridges).items() if leg in listed}

    async def adopt_call(self, call_id: str, remote_ref: str | None) -> bool:
        """``ResumablePbx``: take over an answered call a previous run left (``kill -9``).

        The remote leg (``remote_ref``, else the call id) must be up and still in our Stasis
        app; the previous run's media, warm-transfer legs and bridges are deleted (checked), so
        ``call_media`` opens fresh ones under the same ids. On any failure nothing stays
        registered, so ``hang_up_leftovers`` can clear the call."""
        remote = remote_ref or call_id
        if self._calls.get(call_id) is not None or not is_token(remote):
            return False
        # Right after start-up the links may still be coming up: the caller bounds the wait.
        boot = await self._wait_settled(max(self._register_timeout, ADOPT_SETTLE_WAIT), _NOT_READY)
        try:
            found = await self.ari.request("GET", f"/channels/{_seg(remote)}")
        except AriHttpError as exc:
            if exc.status == 404:
                return False
            raise
        if not isinstance(found, dict) or not _waits_in_app(found, self._settings.app):
            return False
        await self._clear_leftover_legs(call_id)
        direction = "inbound" if remote != call_id else "outbound"
        legs = self._calls.add(call_id, remote, direction)
        legs.boot = boot
        try:
            await self.ari.subscribe_channel(remote)  # its ChannelDestroyed, whatever happens
            self._media.entered_stasis(remote)  # it is there already: no StasisStart comes
            self._calls.mark_answered(call_id)  # the engine has it in progress: not reported
            # Gone while we looked: its ChannelDestroyed went to nobody.
            await self.ari.request("GET", f"/channels/{_seg(remote)}")
        except BaseException as exc:
            self._calls.forget(call_id)
            self._media.left_stasis(remote)
            # Gone: 404 from the look, 422 ("Event source does not exist") from the
            # subscription when the channel went between the first look and it.
            if isinstance(exc, AriHttpError) and exc.status in (404, 422):
                return False
            raise
        log.info("call %s: adopted from a previous run", mask_call_id(call_id))
        return True

    async def _clear_leftover_legs(self, call_id: str) -> None:
        """Delete the media / warm-transfer legs and bridges a previous run left of the call,
        until ARI lists none of them (a new leg reuses their ids)."""
        channels = [leg_id(call_id, suffix) for suffix in _LEFTOVER_LEGS]
        bridges = [leg_id(call_id, suffix) for suffix in _LEFTOVER_BRIDGES]
        for channel in channels:
            await self.ari.hangup_channel(channel, "normal")
        for bridge in bridges:
            await destroy_bridge(self.ari, bridge)
        for _ in range(40):  # a DELETEd channel or bridge leaves the lists within milliseconds
            listed = {str(c.get("id", "")) for c in await self.ari.list_channels()}
            found = await self.ari.request("GET", "/bridges")
            if isinstance(found, list):
                listed |= {str(b.get("id", "")) for b in found if isinstance(b, dict)}
            if not listed.intersection(channels, bridges):
                return
            await asyncio.sleep(0.05)
        raise PbxError("the media legs a previous run left are still up")

    # --- media ------------------------------------------------------------------------------

    async def open_media(
        self, call_id: str, *, media_format: str = "ulaw", connection_type: str = "server"
    ) -> MediaLeg:
        """The call's bridge + websocket media leg, bridged once both legs are in Stasis."""
        return await self._media.open(
            call_id, media_format=media_format, connection_type=connection_type
        )

    def call_media(
        self, call_id: str, *, media_format: str = "ulaw"
    ) -> AbstractAsyncContextManager[CallMedia]:
        """``MediaPbx``: the answered call's audio over a chan_websocket leg (``media_connection``
        server or client); on exit the media leg and the bridge go, the call stays up."""
        connection = self._settings.media_connection
        return self._media.session(call_id, media_format=media_format, connection_type=connection)

    def media_endpoint(self) -> MediaAcceptor | None:
        """``MediaAcceptingPbx``: client mode, where Asterisk's media websockets arrive (for
        voicedock to serve on ``/media``); ``None`` in server mode."""
        return self._media.acceptor

    async def _cleanup(self, call_id: str) -> None:
        await self._media.release(call_id)
        self._forget(call_id)

    def _forget(self, call_id: str) -> None:
        self._calls.forget(call_id)
        self._unwanted.discard(call_id)

    # --- events -----------------------------------------------------------------------------

    def _on_ari_arrival(self, event: AriEvent) -> None:
        """As Asterisk says it, not once the queue reaches it: which channels are in Stasis
        (a media leg is bridged the moment both its channels are)."""
        match event:
            case StasisStart():
                self._media.entered_stasis(event.channel.id)
            case StasisEnd() | ChannelDestroyed():
                self._media.left_stasis(event.channel.id)
            case _:
                pass

    async def _on_ari_event(self, event: AriEvent) -> None:
        match event:
            case StasisStart():
                if not await self.transfers.on_stasis_start(event):
                    await self._on_stasis_start(event)
            case DialProgress(dialstatus="ANSWER"):
                await self.transfers.on_dial(event)
            case DialProgress(peer=peer, dialstatus="RINGING"):
                await self._ringing(peer.id)
            case ChannelStateChange(channel=channel) if channel.state == "Ringing":
                await self._ringing(channel.id)
            case DtmfReceived(channel=channel, digit=digit):
                self.transfers.on_dtmf(channel.id, digit)
                legs = self._calls.by_channel(channel.id)
                if legs is not None and legs.main_channel == channel.id and not legs.ended:
                    await self._report_dtmf(legs.call_id, digit)
            case ChannelDestroyed():
                self.transfers.on_channel_destroyed(event.channel.id)
                await self._ended(event.channel.id, event.cause, event.tech_cause)
            case ApplicationReplaced():
                log.error("another client took over ARI app %r", self._settings.app)
            case _:
                pass

    async def _on_ami_event(self, event: AmiEvent) -> None:
        match event:
            case AmiHangup(uniqueid=uid, cause=cause, tech_cause=tech):
                await self._ended(uid, cause, tech)
            case AmiRinging(uniqueid=uid):
                await self._ringing(uid)
            case _:
                pass

    async def _ringing(self, channel_id: str) -> None:
        legs = self._calls.by_channel(channel_id)
        main = legs is not None and legs.main_channel == channel_id
        if main and legs is not None and legs.call_id in self._unwanted:
            await self._hang_up_unwanted(legs.call_id)
            return
        if main and legs is not None:
            await self._report_ringing(legs.call_id)

    async def _ended(self, channel_id: str, cause: int | None, tech_cause: int | None) -> None:
        legs = self._calls.by_channel(channel_id)
        if legs is None:
            return
        if channel_id != legs.main_channel:
            self._calls.detach_channel(channel_id)  # a media leg went away
            return
        if await self._report_hangup(legs.call_id, cause=cause, tech_cause=tech_cause):
            self._spawn(self._cleanup(legs.call_id))

    async def _on_stasis_start(self, event: StasisStart) -> None:
        args = event.args
        if len(args) >= 2 and args[0] == "outbound":
            call_id = args[1]
            legs = self._calls.get(call_id) or self._calls.add(
                call_id, event.channel.id, "outbound"
            )
            if legs.main_channel == event.channel.id and call_id in self._unwanted:
                await self._hang_up_unwanted(call_id)  # answered, but it was hung up before
                return
            if legs.main_channel == event.channel.id:
                await self._report_answered(call_id)
        elif len(args) >= 2 and args[0] == "inbound":
            self._accepting.add(event.channel.id)
            self._spawn(self._accept_inbound(event.channel, args[1]))

    def _serving_inbound(self) -> set[str]:
        """The inbound callers' channels this process accepts or has accepted."""
        return self._accepting | {legs.main_channel for legs in self._calls.live()}

    async def _accept_inbound(self, channel: AriChannel, did: str) -> None:
        try:
            await self._answer_inbound(channel, did)
        finally:
            self._accepting.discard(channel.id)

    async def _answer_inbound(self, channel: AriChannel, did: str) -> None:
        try:
            # A caller on a fresh Asterisk: its boot is known once the restart check ran.
            boot = await self._wait_settled(self._register_timeout, _NOT_READY)
        except PbxUnavailable:
            await self.ari.hangup_channel(channel.id, "congestion")
            return
        call = InboundCall(pbx_call_ref=channel.id, caller=channel.caller_number, called=did)
        call_id = await self._offer_inbound(call)
        if call_id is None:
            await self.ari.hangup_channel(channel.id, "rejected")
            return
        self._calls.add(call_id, channel.id, "inbound").boot = boot
        try:
            await self.ari.subscribe_channel(channel.id)  # else no ChannelDestroyed
            await self.ari.answer(channel.id)
        except AriHttpError as exc:
            if exc.status != 404:
                raise
            await self._ended(channel.id, None, None)  # the caller left before we answered
            return
        await self._report_answered(call_id)

    # --- reconcile --------------------------------------------------------------------------

    def _links(self) -> tuple[int, int]:
        """Which ARI and AMI connections are current (each reconnect counts one up)."""
        return self.ari.connect_count, self.ami.connect_count if self.ami is not None else 0

    def _links_up(self) -> bool:
        return self.ari.registered and (self.ami is None or self.ami.connected)

    async def _reconcile_connected(self) -> None:
        """The (re)connect hook: reconcile, retried while this connection stays current (no
        originate goes out until it succeeded)."""
        links = self._links()
        for _ in range(40):
            try:
                await self.reconcile()
            except PbxError as exc:
                if self._closed or self._links() != links:
                    return  # a newer connection runs its own
                log.warning("reconcile after connect failed (%s); retrying", type(exc).__name__)
            else:
                if self._node_apps is not None:  # a restarted Asterisk has lost the list
                    await self._node_apps.publish(self.ari)
                    self._spawn(self._node_apps.take_back_own(self.ari, self._serving_inbound))
                return
            await asyncio.sleep(0.25)

    async def _check_restart(self) -> bool:
        """A changed Asterisk start time (ARI ``/asterisk/info``) is a restart."""
        self._startup_seen = startup = await self.ari.startup_time()
        return bool(self._startup_time and startup and startup != self._startup_time)

    def _record_boot(self) -> bool:
        self._startup_time = self._startup_seen or self._startup_time
        return bool(self._startup_time)

    async def _listed_channels(self) -> set[str]:
        return {str(c.get("id", "")) for c in await self.ari.list_channels()}

    async def _hang_up_restart_leftovers(self, old: list[CallLegs]) -> bool:
        """Every leg and bridge of the calls the restarted Asterisk still has is deleted."""
        present = await self._listed_channels()
        for legs in old:
            for channel in legs.owned_channels():
                if channel in present:
                    await self.ari.hangup_channel(channel, "normal")
                    log.warning(
                        "call %s: a leg outlived the restart; hung up", mask_call_id(legs.call_id)
                    )
            for bridge in sorted(legs.bridges):
                await destroy_bridge(self.ari, bridge)
        ours = {channel for legs in old for channel in legs.owned_channels()}
        for _ in range(20):  # a DELETEd channel leaves the list within milliseconds
            if not ours & await self._listed_channels():
                return True
            await asyncio.sleep(0.05)
        return False

    async def _end_missing(self, legs: CallLegs) -> None:
        if await self._report_hangup(legs.call_id, detail="reconciled"):
            self._spawn(self._cleanup(legs.call_id))

    async def _end_lost_in_restart(self, legs: CallLegs) -> None:
        await self._report_hangup(legs.call_id, detail="pbx-restart")
        self._forget(legs.call_id)


def _waits_in_app(channel: Mapping[str, Any], app: str) -> bool:
    """An answered channel (ARI's channel JSON) still in ``app``'s Stasis."""
    dialplan = channel.get("dialplan")
    if channel.get("state") != "Up" or not isinstance(dialplan, Mapping):
        return False
    app_data = str(dialplan.get("app_data", ""))
    return dialplan.get("app_name") == "Stasis" and app_data.split(",", 1)[0] == app


def _seg(value: str) -> str:
    return quote(value, safe="")


def _pending(legs: CallLegs) -> bool:
    """Originated and not yet answered or over."""
    return not (legs.answered or legs.ended or legs.transferred)
