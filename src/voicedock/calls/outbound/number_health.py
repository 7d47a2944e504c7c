"""Caller numbers' health, judged as each outbound call made from one ends.

An observer of the call engine (``calls/observer.py``'s ``on_report``, in the transaction that
reports the call): the call's number gets its outcomes over the operator's window
(``[number_health]``, ``domain/number_health.py``) stored with it, and a verdict. A number
answered less than the floor over enough calls is flagged, and rests ``rest_hours`` when the
operator says so (no call is made from it until then unless a request names it); a flagged
number whose outcomes recover, or whose rest is over, is healthy again, its calls counted from
then. Each change of flag is announced once (``NumberHealthAlerts``: the ``phone-number-health``
webhook), by the one transaction that made it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from voicedock.config import NumberHealthSettings
from voicedock.domain.number_health import NumberHealth, verdict
from voicedock.domain.records import Call, CallEvent, CallMessage, Direction, PhoneNumber
from voicedock.pbx.causes import CallError
from voicedock.store.base import Transaction

log = logging.getLogger("voicedock.numbers")
# A call that failed so counts for its number, as one not answered: the callee's side decided
# (busy, no answer, rejected); not a call cancelled, never dialed or failed on our side.
UNANSWERED = (str(CallError.BUSY), str(CallError.NO_ANSWER), str(CallError.REJECTED))


class NumberHealthAlerts(Protocol):
    """Who announces a number flagged unhealthy or healthy again (the webhooks), in the
    transaction that changed its flag."""

    async def number_health(self, tx: Transaction, number: PhoneNumber) -> None: ...


class NumberHealthWatch:
    """Judges the number of each outbound call as the call is reported (see the module)."""

    def __init__(
        self, settings: NumberHealthSettings, alerts: NumberHealthAlerts | None = None
    ) -> None:
        self._settings = settings
        self._alerts = alerts

    async def on_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        return None

    async def on_report(self, tx: Transaction, call: Call, messages: Sequence[CallMessage]) -> None:
        if call.direction is not Direction.OUTBOUND or call.number_id is None:
            return
        if call.test_run_id is not None:
            return
        number = await tx.get_phone_number(call.organization_id, call.number_id)
        if number is not None:
            await self.judge(tx, number, call.ended_at or call.updated_at)

    async def judge(self, tx: Transaction, number: PhoneNumber, now: datetime) -> PhoneNumber:
        """``number``'s health as of ``now`` stored, its flag changed where the verdict or
        the end of its rest says so; the number as stored."""
        settings = self._settings
        window = timedelta(hours=settings.window_hours)
        since = max(now - window, number.health_since or now - window)
        outcomes = await tx.number_outcomes(
            number.id, since, settings.short_call_seconds, UNANSWERED
        )
        healthy = verdict(outcomes, settings.min_calls, settings.answer_rate_floor)
        health = NumberHealth(
            window_hours=settings.window_hours, as_of=now, outcomes=outcomes, healthy=healthy
        )
        judged = dataclasses.replace(number, health=health)
        await tx.set_number_health(judged)
        rested = number.resting_until is not None and number.resting_until <= now
        if number.flagged_at is None and healthy is False:
            rest = settings.rest_hours
            until = now + timedelta(hours=rest) if rest else None
            flagged = dataclasses.replace(
                judged, flagged_at=now, resting_until=until, health_since=until
            )
            return await self._flag_changed(tx, flagged, number.flagged_at)
        if number.flagged_at is not None and (healthy is True or rested):
            since_then = number.resting_until if rested else number.health_since
            cleared = dataclasses.replace(
                judged, flagged_at=None, resting_until=None, health_since=since_then
            )
            return await self._flag_changed(tx, cleared, number.flagged_at)
        return judged

    async def _flag_changed(
        self, tx: Transaction, number: PhoneNumber, was: datetime | None
    ) -> PhoneNumber:
        if not await tx.change_number_flag(number, was):
            return number  # another node's call changed it first, and announced it
        health = number.health
        rate = None if health is None else health.outcomes.answer_rate()
        log.warning(
            "phone number %s %s (answer rate %s)",
            number.id,
            "flagged unhealthy" if number.flagged_at is not None else "healthy again",
            "n/a" if rate is None else f"{rate:.2f}",
        )
        if self._alerts is not None:
            await self._alerts.number_health(tx, number)
        return number


__all__ = ["NumberHealthAlerts", "NumberHealthWatch"]
