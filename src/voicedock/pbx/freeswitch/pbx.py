"""``FreeswitchPbx``: the ``Pbx`` (and ``MediaPbx``) seam over the FreeSWITCH Event Socket.

Every outbound leg gets its own uuid and carries the call id as the channel variable
``voicedock_call_id`` (``originate``); the ``CallRegistry`` maps call id <-> channel uuid for
every command and event (an inbound call keeps FreeSWITCH's uuid). What the events mean for
the calls is ``call_events``'; how a call ends, ``hangups``'; the parked callers,
``inbound``'s; what a previous run left, ``leftovers``'. A side effect is never re-sent after a
lost socket: ``reconcile`` (``pbx/reconcile``, with ``restarts``) settles the calls against
``show channels`` (or, if FreeSWITCH restarted, fails them all). Media: ``freeswitch.media``;
warm transfer: ``freeswitch.transfer``; the whole design: ``docs/freeswitch.md``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager

from voicedock.config import FreeswitchSettings
from voicedock.errors import MediaError, PbxError
from voicedock.pbx.adapter import PbxAdapter
from voicedock.pbx.base import (
    OriginateRequest,
    PbxEvent,
    PbxEventKind,
    PbxHealth,
    TransferTarget,
    WarmDialogue,
)
from voicedock.pbx.freeswitch.boot_clock import BootClock
from voicedock.pbx.freeswitch.call_events import FreeswitchEvents
from voicedock.pbx.freeswitch.commands import build_uuid_send_dtmf, require_token
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.settings import DEFAULT_EVENTS, EslSettings
from voicedock.pbx.freeswitch.hangups import FreeswitchHangups
from voicedock.pbx.freeswitch.inbound import FreeswitchInbound
from voicedock.pbx.freeswitch.leftovers import FreeswitchLeftovers
from voicedock.pbx.freeswitch.media.call_media import FreeswitchCallMedia
from voicedock.pbx.freeswitch.media.hub import MEDIA_EVENT_SUBCLASSES, FreeswitchMediaHub
from voicedock.pbx.freeswitch.media.stream_server import AudioStreamServer
from voicedock.pbx.freeswitch.originate import FreeswitchOriginator
from voicedock.pbx.freeswitch.restarts import NOT_READY, FreeswitchRestarts
from voicedock.pbx.freeswitch.transfer import (
    BlindTransfers,
    WarmTransferRequest,
    WarmTransfers,
    blind_transfer_commands,
)
from voicedock.pbx.reconcile import Reconciler

__all__ = ["PBX_EVENTS", "FreeswitchPbx", "esl_settings_for"]

log = logging.getLogger("voicedock.pbx.freeswitch.pbx")

# The events the adapter subscribes to; CUSTOM must come last: the event command takes
# subclass names after it.
PBX_EVENTS = (*DEFAULT_EVENTS[:-1], "CHANNEL_PARK", DEFAULT_EVENTS[-1], *MEDIA_EVENT_SUBCLASSES)


def esl_settings_for(settings: FreeswitchSettings) -> EslSettings:
    """The ESL client settings; refuses the default password unless explicitly allowed."""
    return EslSettings(
        host=settings.esl_host,
        port=settings.esl_port,
        password=settings.esl_password,
        allow_default_password=settings.allow_default_password,
        events=PBX_EVENTS,
    )


class FreeswitchPbx(PbxAdapter):
    def __init__(
        self,
        settings: FreeswitchSettings,
        *,
        dids: Collection[str] = (),
        transfer_context: str | None = None,
        esl_settings: EslSettings | None = None,
        warm_dialogue: WarmDialogue | None = None,
        node_id: str = "",
    ) -> None:
        """``dids``: our numbers unless ``settings.dids``; ``esl_settings`` (timeouts, backoff)
        must carry the events in ``PBX_EVENTS``; ``warm_dialogue``: what a warm transfer says
        to the agent and how it hears their answer (``calls/transfers``; without it, a beep
        and digits alone); ``node_id``: this node, which claims each parked inbound call
        before answering it (``freeswitch.inbound_claim``; empty: no claim)."""
        super().__init__(log)
        self.esl = EslClient(
            esl_settings or esl_settings_for(settings), on_reconnect=self._on_reconnect
        )
        self.dids = set(settings.dids or dids)
        context = transfer_context or settings.transfer_context
        self._transfer_context = require_token(context, "transfer_context")
        self._warm_timeout = settings.transfer.timeout_seconds
        server = AudioStreamServer(
            settings.media_host, settings.media_port, settings.media_public_url
        )
        self.media = FreeswitchMediaHub(self.esl, server)
        self.warm = WarmTransfers(
            self.esl,
            self._calls,
            self._reports.emit,
            self.media,
            warm_dialogue,
            voice_decision=settings.transfer.voice_decision,
        )
        self._blind = BlindTransfers(self._transfer_context)
        self._boot_clock = BootClock()  # tells a reconnect from a restarted FreeSWITCH
        self._build_call_parts(node_id)

    def _build_call_parts(self, node_id: str) -> None:
        """What follows the calls: their hangups, the server's restarts and the reconcile
        after each connect, originates, inbound calls (claimed by ``node_id``), a previous
        run's leftovers and the events that reach each of them."""
        calls, reports, spawn = self._calls, self._reports, self._spawn
        self._hangups = FreeswitchHangups(
            self.esl, calls, reports, self._blind, self.warm, spawn, node_id=node_id
        )
        self._reconciler = Reconciler(
            FreeswitchRestarts(self.esl, self._boot_clock, self._hangups),
            calls,
            reports,
            spawn,
            pbx_name="FreeSWITCH",
            not_ready=NOT_READY,
            log=log,
        )
        self._originator = FreeswitchOriginator(
            self.esl, calls, self._reconciler, self._hangups, spawn
        )
        inbound = FreeswitchInbound(
            self.esl,
            calls,
            reports,
            self._hangups,
            self._reconciler,
            self._offer_inbound,
            spawn,
            dids=self.dids,
            node_id=node_id,
            away=self.inbound_away,
        )
        self._leftovers = FreeswitchLeftovers(
            self.esl, calls, self._reconciler, self.media, self.warm
        )
        self._events = FreeswitchEvents(
            calls, reports, self._hangups, inbound, self.media, self._blind, self.warm, spawn
        )

    # --- lifecycle --------------------------------------------------------------------------

    async def _connect(self) -> None:
        # Subscribed before connecting: no event of the first connection can be missed.
        events = self.esl.subscribe()
        self._exit.push_async_callback(events.aclose)
        self._exit.push_async_callback(self.esl.aclose)
        await self.esl.start()
        self._spawn(self._events.consume(events))
        await self.media.server.start()
        self._exit.push_async_callback(self.media.aclose)
        with contextlib.suppress(PbxError):
            await self._boot_clock.check(self.esl)  # when it started
            self._boot_clock.record()
            self._reconciler.settle(0)

    def health(self) -> PbxHealth:
        """The authenticated ESL connection (commands and events share it)."""
        return PbxHealth(
            "freeswitch",
            {"esl": self.esl.connected and not self._closed},
            reconnects={"esl": self.esl.reconnects},
        )

    # --- calls ------------------------------------------------------------------------------

    async def originate(self, request: OriginateRequest) -> None:
        await self._originator.originate(request)

    async def originate_test_call(self, leg_id: str, token: str) -> None:
        """``RehearsalPbx``: a mod_loopback pair (``freeswitch.originate``)."""
        await self._originator.originate_test_call(leg_id, token, self.dids)

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        await self._hangups.hang_up(call_id, reason)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        """``uuid_send_dtmf`` on the call's channel."""
        legs = self._calls.get(call_id)
        if legs is None or legs.ended or legs.transferred:
            raise PbxError("no live call with this id")
        await self.esl.api(build_uuid_send_dtmf(legs.main_channel, digits))

    async def transfer(self, call_id: str, target: TransferTarget) -> None:
        legs = self._calls.get(call_id)
        if legs is None or legs.ended:
            raise PbxError("no live call with this id")
        if self._blind.in_progress(call_id) or self.warm.in_progress(call_id):
            raise PbxError("a transfer of this call is already in progress")
        if target.mode == "warm" and self._tasks.running:
            number, timeout = legs.our_number, self._warm_timeout
            request = WarmTransferRequest.for_target(
                call_id, legs.main_channel, target, number, timeout, context=self._transfer_context
            )
            self.warm.start(request, self._tasks)
            return
        if target.mode != "blind":
            raise PbxError(f"transfer mode {target.mode!r} is not available")
        commands = blind_transfer_commands(legs.main_channel, target, self._transfer_context)
        self._blind.started(call_id)  # before the command: its bridge event may come first
        await self._originator.placed(call_id)  # else the originate's &park() undoes it
        still = self._calls.get(call_id)
        if still is None or still.ended:  # hung up meanwhile: its hangup is the report
            self._blind.forget(call_id)
            raise PbxError("no live call with this id")
        try:
            for command in commands:
                await self.esl.api(command)
        except PbxError as exc:
            self._blind.forget(call_id)
            await self._reports.emit(
                PbxEvent(call_id, PbxEventKind.TRANSFER_FAILED, detail=str(exc))
            )
            raise

    @asynccontextmanager
    async def call_media(
        self, call_id: str, *, media_format: str = "ulaw"
    ) -> AsyncIterator[FreeswitchCallMedia]:
        """The call's audio (``MediaPbx``); on exit the stream stops and the call stays up."""
        legs = self._calls.get(call_id)
        if legs is None or legs.ended or not legs.answered:
            raise MediaError("no answered call with this id")
        async with self.media.open(legs.main_channel, call_id, media_format) as media:
            yield media

    # --- a previous run's calls -------------------------------------------------------------

    async def live_call_ids(self) -> set[str]:
        """Call ids of our calls FreeSWITCH still has, plus uuids of channels we do not know
        (those carrying ``voicedock_call_id`` adopted: ``freeswitch.leftovers``)."""
        return await self._leftovers.live_call_ids()

    async def hang_up_leftovers(self, calls: Mapping[str, str | None]) -> set[str]:
        """``LeftoverPbx``: see ``freeswitch.leftovers``."""
        return await self._leftovers.hang_up_leftovers(calls)

    async def adopt_call(self, call_id: str, remote_ref: str | None) -> bool:
        """``ResumablePbx``: see ``freeswitch.leftovers``."""
        return await self._leftovers.adopt_call(call_id, remote_ref)

    # --- reconcile --------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Settle every call we believe live against FreeSWITCH (``pbx/reconcile``)."""
        await self._reconciler.reconcile()

    async def _on_reconnect(self, _client: EslClient) -> None:
        await self.reconcile()
