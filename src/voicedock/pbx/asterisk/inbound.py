"""Inbound calls on Asterisk: a caller the dialplan hands to our Stasis app, answered or not.

The dialplan (``dialplan/asterisk``) puts a call to one of our numbers into the node's Stasis
application with the args ``inbound,<DID>``. Its ``StasisStart`` brings the caller here: once
the connection is settled (the caller's boot is known), the engine gives it our call id (or
rejects it: ``rejected``; an Asterisk not ready: ``congestion``), and the channel is subscribed
to (its ``ChannelDestroyed`` must reach us after it leaves Stasis) and answered. A caller who
left before the answer ends the call at once (a ``caller-left`` HANGUP: not answered, no PBX
error); one Asterisk refuses to subscribe to or answer is hung up, its call ending as a PBX
error. Either HANGUP says which step failed, how long after the caller arrived (and how much
of it its ``StasisStart`` waited in the event queue, behind other calls' events), and
Asterisk's answer (the engine logs it). While the node drains no caller is offered: one that
reaches it anyway (the live nodes' list not yet current) goes back to ``voicedock-node``, which
gives it to another live node, or is rejected when no node is left.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voicedock.errors import PbxError, PbxUnavailable
from voicedock.logs import describe
from voicedock.pbx.adapter import Spawn
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.ari.events import AriChannel
from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.asterisk.attestation import read_attestation
from voicedock.pbx.asterisk.hangups import AsteriskHangups
from voicedock.pbx.asterisk.node_apps import NODE_CONTEXT
from voicedock.pbx.base import InboundAway, InboundCall
from voicedock.pbx.causes import CALLER_LEFT
from voicedock.pbx.legs import CallRegistry
from voicedock.pbx.reconcile import Reconciler
from voicedock.pbx.reports import CallReports

__all__ = ["AsteriskInbound"]

log = logging.getLogger("voicedock.pbx.asterisk.pbx")

INBOUND_ARG = "inbound"  # the Stasis args of a caller: inbound,<DID>[,<Request-URI host>]
# The detail of the HANGUP of a caller Asterisk would not let us subscribe to or answer.
ANSWER_REFUSED = "answer-refused"


class AsteriskInbound:
    """The callers one ``AsteriskPbx`` accepts."""

    def __init__(
        self,
        ari: AriClient,
        calls: CallRegistry,
        reports: CallReports,
        reconciler: Reconciler,
        hangups: AsteriskHangups,
        offer: Callable[[InboundCall], Awaitable[str | None]],
        spawn: Spawn,
        *,
        register_timeout: float,
        away: Callable[[], InboundAway | None] = lambda: None,
    ) -> None:
        """``offer``: our call id for a caller, ``None`` to reject them (the engine's
        inbound handler); ``register_timeout``: how long a caller waits for a settled
        connection; ``away``: where callers go while the node drains (``None``: offered)."""
        self._ari = ari
        self._calls = calls
        self._reports = reports
        self._reconciler = reconciler
        self._hangups = hangups
        self._offer = offer
        self._spawn = spawn
        self._register_timeout = register_timeout
        self._away = away
        # Callers between their StasisStart and their place in the registry (or hang-up).
        self._accepting: set[str] = set()
        # When each caller's StasisStart was read, until the event queue reaches it.
        self._heard: dict[str, float] = {}

    def heard(self, channel_id: str) -> None:
        """A caller's ``StasisStart`` as it is read, ahead of the event queue (``arrived``):
        a caller not answered says how long its event waited there."""
        self._heard[channel_id] = time.monotonic()

    def arrived(self, channel: AriChannel, did: str, domain: str = "") -> None:
        """A caller's ``StasisStart`` (args ``inbound,<did>[,<domain>]``, the host of its
        Request-URI): accepted in the background."""
        now = time.monotonic()
        arrival = _Arrival(self._heard.pop(channel.id, now), now)
        self._accepting.add(channel.id)
        self._spawn(self._accept(channel, did, domain, arrival))

    def serving(self) -> set[str]:
        """The inbound callers' channels this process accepts or has accepted."""
        return self._accepting | {legs.main_channel for legs in self._calls.live()}

    async def _accept(self, channel: AriChannel, did: str, domain: str, arrival: _Arrival) -> None:
        try:
            await self._answer(channel, did, domain, arrival)
        finally:
            self._accepting.discard(channel.id)

    async def _answer(self, channel: AriChannel, did: str, domain: str, arrival: _Arrival) -> None:
        away = self._away()
        if away is not None:
            log.info("inbound caller %s", away.done)
            if away is InboundAway.ELSEWHERE:
                await self._ari.continue_in_dialplan(channel.id, NODE_CONTEXT, "s")
            else:
                await self._ari.hangup_channel(channel.id, "rejected")
            return
        try:
            # A caller on a fresh Asterisk: its boot is known once the restart check ran.
            boot = await self._reconciler.wait_settled(self._register_timeout)
        except PbxUnavailable:
            await self._ari.hangup_channel(channel.id, "congestion")
            return
        call = InboundCall(
            pbx_call_ref=channel.id,
            caller=channel.caller_number,
            called=did,
            domain=domain,
            attestation=await read_attestation(self._ari, channel.id),
        )
        call_id = await self._offer(call)
        if call_id is None:
            await self._ari.hangup_channel(channel.id, "rejected")
            return
        self._calls.add(call_id, channel.id, "inbound").boot = boot
        step = "subscribe"
        try:
            await self._ari.subscribe_channel(channel.id)  # else no ChannelDestroyed
            step = "answer"
            await self._ari.answer(channel.id)
        except PbxError as exc:
            await self._not_answered(channel.id, step, exc, arrival)
            return
        await self._reports.answered(call_id)

    async def _not_answered(
        self, channel_id: str, step: str, exc: PbxError, arrival: _Arrival
    ) -> None:
        """The caller's ``step`` failed: the call ends now, its HANGUP saying why. A caller
        who left before we answered (the answer finds no channel, 404, or the subscription no
        event source, 422 "Event source does not exist") was not answered; any other refusal
        (or no answer from Asterisk in time) is a PBX error, and the caller is hung up."""
        gone = isinstance(exc, AriHttpError) and exc.status in (404, 422)
        reason = f"{step} of channel {channel_id} failed {arrival.since()}: {describe(exc)}"
        detail = CALLER_LEFT if gone else ANSWER_REFUSED
        # Reported first: the ChannelDestroyed our hang-up causes would say the caller left.
        await self._hangups.ended(channel_id, None, None, detail=detail, reason=reason)
        if not gone:
            with contextlib.suppress(PbxError):  # else it rings on until the caller leaves
                await self._ari.hangup_channel(channel_id, "normal")


@dataclass(frozen=True, slots=True)
class _Arrival:
    """When a caller's ``StasisStart`` was read, and when the event queue handed it on."""

    heard: float
    dispatched: float

    def since(self) -> str:
        """How long ago the caller arrived, and how much of it its event waited in the
        queue, for a log line."""
        queued = self.dispatched - self.heard
        return (
            f"{time.monotonic() - self.heard:.1f} s after the caller arrived"
            f" ({queued:.1f} s of it in the event queue)"
        )
