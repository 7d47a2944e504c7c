"""Inbound calls on Asterisk: a caller the dialplan hands to our Stasis app, answered or not.

The dialplan (``dialplan/asterisk``) puts a call to one of our numbers into the node's Stasis
application with the args ``inbound,<DID>``. Its ``StasisStart`` brings the caller here: once
the connection is settled (the caller's boot is known), the engine gives it our call id (or
rejects it: ``rejected``; an Asterisk not ready: ``congestion``), and the channel is subscribed
to (its ``ChannelDestroyed`` must reach us after it leaves Stasis) and answered. A caller who
left before the answer ends the call at once. While the node drains no caller is offered: one
that reaches it anyway (the live nodes' list not yet current) goes back to ``voicedock-node``,
which gives it to another live node, or is rejected when no node is left.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from voicedock.errors import PbxUnavailable
from voicedock.pbx.adapter import Spawn
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.ari.events import AriChannel
from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.asterisk.hangups import AsteriskHangups
from voicedock.pbx.asterisk.node_apps import NODE_CONTEXT
from voicedock.pbx.base import InboundAway, InboundCall
from voicedock.pbx.legs import CallRegistry
from voicedock.pbx.reconcile import Reconciler
from voicedock.pbx.reports import CallReports

__all__ = ["AsteriskInbound"]

log = logging.getLogger("voicedock.pbx.asterisk.pbx")

INBOUND_ARG = "inbound"  # the Stasis args of a caller: inbound,<DID>[,<Request-URI host>]


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

    def arrived(self, channel: AriChannel, did: str, domain: str = "") -> None:
        """A caller's ``StasisStart`` (args ``inbound,<did>[,<domain>]``, the host of its
        Request-URI): accepted in the background."""
        self._accepting.add(channel.id)
        self._spawn(self._accept(channel, did, domain))

    def serving(self) -> set[str]:
        """The inbound callers' channels this process accepts or has accepted."""
        return self._accepting | {legs.main_channel for legs in self._calls.live()}

    async def _accept(self, channel: AriChannel, did: str, domain: str) -> None:
        try:
            await self._answer(channel, did, domain)
        finally:
            self._accepting.discard(channel.id)

    async def _answer(self, channel: AriChannel, did: str, domain: str) -> None:
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
            pbx_call_ref=channel.id, caller=channel.caller_number, called=did, domain=domain
        )
        call_id = await self._offer(call)
        if call_id is None:
            await self._ari.hangup_channel(channel.id, "rejected")
            return
        self._calls.add(call_id, channel.id, "inbound").boot = boot
        try:
            await self._ari.subscribe_channel(channel.id)  # else no ChannelDestroyed
            await self._ari.answer(channel.id)
        except AriHttpError as exc:
            # The caller left before we answered: the answer finds no channel (404), or the
            # subscription no event source (422 "Event source does not exist").
            if exc.status not in (404, 422):
                raise
            await self._hangups.ended(channel.id, None, None)
            return
        await self._reports.answered(call_id)
