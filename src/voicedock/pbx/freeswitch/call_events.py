"""What FreeSWITCH's ESL events mean for voicedock's calls: ``FreeswitchEvents``.

The ``CallRegistry`` maps each channel uuid to its call. ``CHANNEL_PROGRESS*`` → RINGING,
``CHANNEL_ANSWER`` → ANSWERED, ``DTMF`` → the caller's digit, ``CHANNEL_HANGUP_COMPLETE`` →
HANGUP with the Q.850 cause and ``sip_term_status``, so ``error_for_unanswered`` gives the
same ``CallError`` as on Asterisk. Every event also goes to the call's media (play events,
digits) and to the warm transfers (an agent leg's events, the caller's bridge to it); the
caller's bridge or park decides a blind transfer; an inbound channel we do not know parks to
be offered (``inbound``).
"""

from __future__ import annotations

import logging

from voicedock.errors import PbxError
from voicedock.pbx.adapter import Spawn
from voicedock.pbx.base import PbxEventKind
from voicedock.pbx.causes import freeswitch_cause
from voicedock.pbx.freeswitch.esl.handles import EventSubscription
from voicedock.pbx.freeswitch.esl.wire import EslEvent
from voicedock.pbx.freeswitch.hangups import FreeswitchHangups
from voicedock.pbx.freeswitch.inbound import FreeswitchInbound
from voicedock.pbx.freeswitch.media.hub import FreeswitchMediaHub
from voicedock.pbx.freeswitch.transfer import BlindTransfers, WarmTransfers
from voicedock.pbx.legs import CallRegistry
from voicedock.pbx.reports import CallReports

__all__ = ["FreeswitchEvents"]

log = logging.getLogger("voicedock.pbx.freeswitch.pbx")


class FreeswitchEvents:
    """The ESL events of one ``FreeswitchPbx``, as its calls' reports."""

    def __init__(
        self,
        calls: CallRegistry,
        reports: CallReports,
        hangups: FreeswitchHangups,
        inbound: FreeswitchInbound,
        media: FreeswitchMediaHub,
        blind: BlindTransfers,
        warm: WarmTransfers,
        spawn: Spawn,
    ) -> None:
        self._calls = calls
        self._reports = reports
        self._hangups = hangups
        self._inbound = inbound
        self._media = media
        self._blind = blind
        self._warm = warm
        self._spawn = spawn

    async def consume(self, events: EventSubscription) -> None:
        """Every event of the subscription, one at a time, until it ends."""
        async for event in events:
            try:
                await self.on_event(event)
            except PbxError as exc:
                log.warning("FreeSWITCH event %s not handled: %s", event.name, exc)

    async def on_event(self, event: EslEvent) -> None:
        uid = event.unique_id
        if not uid:
            return
        self._hangups.on_sight(uid, event.name)
        self._media.on_event(event)  # play events and digits for attached media
        self._warm.on_event(event)  # an agent leg's event, or the caller's bridge to it
        if self._warm.is_agent_leg(uid):
            return
        legs = self._calls.by_channel(uid)
        if legs is None and event.name == "CHANNEL_PARK":
            if event.get("Call-Direction") == "inbound":
                self._inbound.parked(event, uid)
            return
        if legs is None or legs.main_channel != uid:
            return
        legs.seen_on_pbx = True
        call_id = legs.call_id
        outcome = self._blind.outcome(call_id, event)
        if outcome is not None:
            if outcome.kind is PbxEventKind.TRANSFERRED:
                legs.transferred = True  # the caller belongs to the target now
                self._spawn(self._media.stop_stream(uid))
            await self._reports.emit(outcome)
            return
        match event.name:
            case "CHANNEL_PROGRESS" | "CHANNEL_PROGRESS_MEDIA":
                await self._reports.ringing(call_id)
            case "CHANNEL_ANSWER":
                await self._reports.answered(call_id)
            case "DTMF":
                digit = event.get("DTMF-Digit")
                if digit and not legs.ended:
                    await self._reports.dtmf(call_id, digit[:1])
            case "CHANNEL_HANGUP_COMPLETE":
                await self._hangups.ended(
                    call_id,
                    cause=freeswitch_cause(event.get("Hangup-Cause")),
                    tech_cause=_sip_status(event.get("variable_sip_term_status")),
                )
                self._warm.cancel(call_id)
            case _:
                pass


def _sip_status(value: str | None) -> int | None:
    """``variable_sip_term_status``: the SIP status the call ended with."""
    return int(value) if value and value.isascii() and value.isdigit() else None
