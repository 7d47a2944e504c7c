"""Inbound calls on FreeSWITCH: a call to one of our numbers, parked by the dialplan, answered.

``dialplan/freeswitch`` parks a call to our numbers (normalised to E.164 in
``voicedock_did``); its ``CHANNEL_PARK`` brings it here. When several nodes share FreeSWITCH,
this node first claims it (``inbound_claim``: one node answers each call). The engine gives it
our call id (or rejects it: ``CALL_REJECTED``); the channel keeps FreeSWITCH's uuid and carries
the call id as ``voicedock_call_id`` (which maps it back after a restart of voicedock), and is
answered. A caller who left before the answer ends the call at once. A caller is taken only on a
connection reconcile has checked for a restart (``Reconciler.wait_checked``) and stamped with
that boot: one reaching a restarted FreeSWITCH as voicedock reconnects is a call of the fresh
FreeSWITCH, never ended with the calls lost in the restart. While the node drains it claims no
call another live node can take (that node's claim wins), and rejects one no node is left for.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from voicedock.domain.attestation import CallerAttestation, caller_attestation
from voicedock.errors import PbxError, PbxUnavailable
from voicedock.logs import describe
from voicedock.pbx.adapter import Spawn
from voicedock.pbx.base import InboundAway, InboundCall
from voicedock.pbx.causes import CALLER_LEFT
from voicedock.pbx.freeswitch import inbound_claim
from voicedock.pbx.freeswitch.commands import (
    build_uuid_answer,
    build_uuid_kill,
    build_uuid_set_call_id,
    require_call_id,
)
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.errors import EslCommandError
from voicedock.pbx.freeswitch.esl.wire import EslEvent
from voicedock.pbx.freeswitch.hangups import HANGUP_REASONS, FreeswitchHangups
from voicedock.pbx.freeswitch.restarts import SETTLE_TIMEOUT
from voicedock.pbx.legs import CallRegistry
from voicedock.pbx.reconcile import Reconciler
from voicedock.pbx.reports import CallReports

__all__ = ["FreeswitchInbound", "parked_inbound_call"]

log = logging.getLogger("voicedock.pbx.freeswitch.pbx")


class FreeswitchInbound:
    """The parked callers one ``FreeswitchPbx`` accepts."""

    def __init__(
        self,
        esl: EslClient,
        calls: CallRegistry,
        reports: CallReports,
        hangups: FreeswitchHangups,
        reconciler: Reconciler,
        offer: Callable[[InboundCall], Awaitable[str | None]],
        spawn: Spawn,
        *,
        dids: set[str],
        node_id: str,
        away: Callable[[], InboundAway | None] = lambda: None,
    ) -> None:
        """``offer``: our call id for a caller, ``None`` to reject them (the engine's inbound
        handler); ``dids``: our numbers; ``node_id``: this node, which claims each parked
        call before answering it (empty: no claim); ``away``: where callers go while the
        node drains (``None``: offered)."""
        self._esl = esl
        self._calls = calls
        self._reports = reports
        self._hangups = hangups
        self._reconciler = reconciler
        self._offer = offer
        self._spawn = spawn
        self._dids = dids
        self._node_id = node_id
        self._away = away
        self._pending: set[str] = set()

    def parked(self, event: EslEvent, uid: str) -> None:
        """The ``CHANNEL_PARK`` of an inbound channel we do not know: accepted in the
        background when it is a call to one of our numbers."""
        if self._calls.by_channel(uid) is not None or uid in self._pending:
            return  # already ours (a park after a media restart, say)
        call = parked_inbound_call(event, uid, self._dids)
        if call is not None:  # else another application's call
            self._pending.add(uid)
            self._spawn(self._accept(call))

    async def _accept(self, call: InboundCall) -> None:
        uid = call.pbx_call_ref
        try:
            try:
                # A caller on a fresh FreeSWITCH: its boot is known once the restart check ran.
                boot = await self._reconciler.wait_checked(SETTLE_TIMEOUT)
            except PbxUnavailable:
                if not self._node_id:  # else another node may take it
                    with contextlib.suppress(PbxError):
                        await self._esl.api(build_uuid_kill(uid, HANGUP_REASONS["congestion"]))
                return
            away = self._away()
            if away is InboundAway.ELSEWHERE:
                log.info("inbound caller %s", away.done)
                return  # another live node claims and answers it
            if self._node_id and not await inbound_claim.claim(self._esl, uid, self._node_id):
                return  # another node answers it
            if away is not None:
                log.info("inbound caller %s", away.done)
            call_id = None if away is not None else await self._offer(call)
            if call_id is None:
                await self._esl.api(build_uuid_kill(uid, "CALL_REJECTED"))
                if self._node_id:
                    await inbound_claim.release(self._esl, uid)
                return
            legs = self._calls.add(call_id, uid, "inbound")
            legs.boot, legs.seen_on_pbx, legs.our_number = boot, True, call.called
        finally:
            self._pending.discard(uid)
        step = "setting its call id"
        try:
            # The channel keeps FreeSWITCH's uuid; the variable maps it back after a restart.
            await self._esl.api(build_uuid_set_call_id(uid, require_call_id(call_id)))
            step = "answer"
            await self._esl.api(build_uuid_answer(uid))
        except EslCommandError as exc:
            # The caller left before we answered; its hangup event may already be gone.
            reason = f"{step} failed: {describe(exc)}"
            await self._hangups.ended(
                call_id, cause=None, tech_cause=None, detail=CALLER_LEFT, reason=reason
            )
            return
        await self._reports.answered(call_id)


def parked_inbound_call(event: EslEvent, uid: str, dids: set[str]) -> InboundCall | None:
    """The ``CHANNEL_PARK`` of a call to one of our numbers, as an ``InboundCall``."""
    # The dialplan normalises the carrier's number to E.164 in voicedock_did.
    called = event.get("variable_voicedock_did") or event.get("Caller-Destination-Number")
    if not called or called not in dids:
        return None
    caller = event.get("Caller-Caller-ID-Number") or ""
    domain = event.get("variable_sip_req_host") or ""
    return InboundCall(uid, caller, called, domain=domain, attestation=_attestation(event))


# Where sofia puts an INVITE's headers among the channel's variables, first found wins: the
# Identity header (``sip_h_`` where the profile passes unknown headers on), the
# P-Asserted-Identity, and the From header as received.
IDENTITY_VARIABLES = (
    "variable_sip_h_Identity",
    "variable_sip_h_identity",
    "variable_sip_identity",
)
ASSERTED_VARIABLES = ("variable_sip_h_P-Asserted-Identity", "variable_sip_P-Asserted-Identity")
FROM_VARIABLES = ("variable_sip_full_from",)


def _attestation(event: EslEvent) -> CallerAttestation | None:
    """The caller's STIR/SHAKEN attestation among the park event's variables."""

    def first(names: tuple[str, ...]) -> str | None:
        return next((v for name in names if (v := event.get(name))), None)

    return caller_attestation(
        first(IDENTITY_VARIABLES), first(ASSERTED_VARIABLES), first(FROM_VARIABLES)
    )
