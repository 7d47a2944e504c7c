"""Placing an outbound call, whoever asks: ``Placement.place``, the one function that does it.

``POST /calls/outbound`` (``outbound.py``), a campaign's contact come due and a scheduled call
whose time has come (the dialer, ``calls/campaigns/dialer.py``) are each a ``CallAsk``. In one
store transaction the ask claims what to dial, the call reserves a caller number, passes the
dial limits (``calls/outbound/dial_pacing.py``: counted across every node) and is stored
``connecting`` with its ``status`` event, and the ask records it (the idempotency answer, the
contact's call). Only after the commit is the PBX asked to originate, and an originate is never
retried: a failure marks the call failed and is reported to the client (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import NoReturn, Protocol

from voicedock.calls.engine.attempts import attempt, on_failure
from voicedock.calls.engine.ground import EnginePart, Ground
from voicedock.calls.engine.presynthesizer import Presynthesizer, prepare_ahead
from voicedock.calls.engine.ringing import RingDeadlines
from voicedock.calls.outbound.dial_pacing import OrganizationLimits, admit_dial
from voicedock.calls.outbound.idempotency import NOT_PLACED, not_placed_error
from voicedock.calls.outbound.new_call import NewCall
from voicedock.calls.transitions import fail, status_event_data
from voicedock.domain.ids import mask_call_id
from voicedock.domain.number_plan import local_prefix
from voicedock.domain.records import (
    Call,
    CallEvent,
    CallStatus,
    Direction,
    PhoneNumber,
    Trunk,
)
from voicedock.errors import PbxUnavailable, RateLimited, StoreError
from voicedock.logs import call_context, describe
from voicedock.organizations.trunk_access import TrunkAccess
from voicedock.pbx.base import OriginateRequest, Pbx
from voicedock.pbx.causes import CallError
from voicedock.store.base import NumberChoice, Transaction
from voicedock.validation import mask_number

log = logging.getLogger("voicedock.calls")

PBX_UNAVAILABLE = "pbx-unavailable"
# A cancel waits at most this long for the PBX to accept the call's originate.
ORIGINATE_WAIT_SECONDS = 10.0


class CallAsk(Protocol):
    """Who asks for an outbound call, as ``Placement.place`` sees it: inside the one store
    transaction that stores the call (``POST /calls/outbound``; the dialer's campaign contacts
    and scheduled calls, ``calls/campaigns/dialer.py``)."""

    async def claim(self, tx: Transaction, now: datetime) -> NewCall | timedelta | None:
        """What to dial now, taken in ``tx``; how long to wait first (``tx`` rolls back:
        nothing was claimed); ``None``: nothing to dial (what ``tx`` did commits)."""
        ...

    async def placed(self, tx: Transaction, call: Call, now: datetime) -> None:
        """``call`` is stored (``connecting``) in ``tx``: what the asker records with it."""
        ...


# Where a placed call's originate runs when the asker does not wait for it: given the
# originate, to run once or hand to its own tasks (the dialer's originates overlap).
Originate = Callable[[], Awaitable[None]]
Launch = Callable[[Originate], Awaitable[None]]


class _HeldBack(Exception):
    """A limit (or the asker) says to wait: the placing transaction rolls back."""

    def __init__(self, wait: timedelta) -> None:
        super().__init__(wait)
        self.wait = wait


class Originating:
    """This node's outbound calls whose originate the PBX has not accepted yet: a cancel
    (``calls/commands.py``) waits for it, else it would find no channel to hang up."""

    def __init__(self) -> None:
        self._originating: dict[str, asyncio.Event] = {}  # set once the PBX answered

    @contextlib.contextmanager
    def originating(self, call_id: str) -> Iterator[None]:
        originated = self._originating[call_id] = asyncio.Event()
        try:
            yield
        finally:
            originated.set()
            del self._originating[call_id]

    async def wait(self, call_id: str) -> None:
        """Until the PBX answered this node's originate of the call (at most
        ``ORIGINATE_WAIT_SECONDS``)."""
        originated = self._originating.get(call_id)
        if originated is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ORIGINATE_WAIT_SECONDS):
                    await originated.wait()


def new_call_record(dial: NewCall, now: datetime, node_id: str) -> Call:
    """The record of an outbound call (``connecting``, on ``node_id``), its number unset."""
    return Call(
        id=dial.call_id,
        organization_id=dial.organization_id,
        direction=Direction.OUTBOUND,
        status=CallStatus.CONNECTING,
        caller_phone=dial.destination,
        assistant_phone=None,
        **dial.assistant.call_fields(),
        context=dial.context,
        owner_node=node_id,
        campaign_id=dial.campaign_id,
        api_key_id=dial.api_key_id,
        metadata=dial.metadata,
        created_at=now,
        updated_at=now,
    )


class Placement(EnginePart):
    def __init__(
        self,
        ground: Ground,
        pbx: Pbx,
        trunk_access: TrunkAccess,
        originating: Originating,
        ringing: RingDeadlines,
        presynthesizer: Presynthesizer | None = None,
    ) -> None:
        super().__init__(ground)
        self._pbx = pbx
        self._trunk_access = trunk_access
        self._originating = originating
        self._ringing = ringing
        self._presynthesizer = presynthesizer
        self._organization_limits = OrganizationLimits(ground.settings.limits)
        self._number_health = ground.settings.number_health  # the pool's preferences
        # Calls stored but not originated yet: their dial in the trunk's CPS window.
        self._trunk_dials: dict[str, int] = {}

    async def place(
        self,
        ask: CallAsk,
        trunks: dict[str, Trunk] | None = None,
        *,
        now: datetime | None = None,
        launch: Launch | None = None,
    ) -> Call | timedelta | None:
        """Place one outbound call, whoever asks for it: ``POST /calls/outbound``, a
        campaign's contact come due, a scheduled call whose time has come (the dialer).

        In one store transaction ``ask`` claims what to dial, the call reserves a caller
        number, passes the dial limits (``calls/outbound/dial_pacing.py``: counted across every
        node) and is stored ``connecting`` with its ``status`` event, and ``ask`` records it
        (the idempotency answer, the contact's call). Only after the commit is the PBX asked
        to originate: awaited here (a failure marks the call failed and raises the 503
        ``ApiError``), or handed to ``launch`` (the dialer's originates overlap).

        Returns the call; how long a limit (or ``ask``) says to wait, nothing stored;
        ``None`` when ``ask`` has nothing to dial. ``RateLimited``: every caller number is
        busy. ``trunks``: the configured trunks by name, read here unless given; ``now``: the
        moment of the dial (the engine's clock unless given)."""
        if trunks is None:
            trunks = {trunk.name: trunk for trunk in await self._store.list_trunks()}
        now = now or self._now()
        try:
            async with attempt(self._store) as tx:
                stored = await self._claim_and_store(tx, ask, now, trunks)
        except _HeldBack as held:  # rolled back: nothing claimed, nothing stored
            return held.wait
        if stored is None:
            return None  # what the claim did (a contact settled, a call expired) committed
        call, dial = stored
        if launch is None:
            await self._originate(call, dial, trunks)
        else:
            await launch(functools.partial(self._originate, call, dial, trunks))
        return call

    async def _claim_and_store(
        self, tx: Transaction, ask: CallAsk, now: datetime, trunks: dict[str, Trunk]
    ) -> tuple[Call, NewCall] | None:
        """``place``'s transaction: ``_HeldBack`` rolls it back."""
        dial = await ask.claim(tx, now)
        if dial is None:
            return None
        if isinstance(dial, timedelta):
            raise _HeldBack(dial)
        call = await self._store_dial(tx, dial, now, trunks)
        if isinstance(call, timedelta):
            raise _HeldBack(call)
        await ask.placed(tx, call, now)
        return call, dial

    async def _store_dial(
        self, tx: Transaction, dial: NewCall, now: datetime, trunks: dict[str, Trunk]
    ) -> Call | timedelta:
        """Reserve a caller number, count the call against the dial limits and store it
        ``connecting`` in ``tx`` (a new call is inserted, a scheduled one moves): the call,
        or how long to wait when a limit is reached (nothing stored; roll ``tx`` back).
        ``RateLimited`` when every number is busy."""
        admitted = await self._admit(tx, dial, now, trunks)
        if isinstance(admitted, timedelta):
            return admitted
        number, pbx = admitted
        scheduled = dial.scheduled
        call = dataclasses.replace(
            scheduled or new_call_record(dial, now, self._node_id),
            status=CallStatus.CONNECTING,
            assistant_phone=number.number,
            number_id=number.id,
            pbx=pbx,
            trunk=number.trunk,
            updated_at=now,
        )
        if scheduled is None:
            await self._timeline.begin(tx, call, now)
            return call
        await tx.update_call(call)
        log.info("call %s: scheduled time reached, dialing", mask_call_id(call.id))
        data = status_event_data(scheduled, call)
        await self._timeline.add_event(tx, call, CallEvent(call.id, "status", data, now))
        return call

    async def _admit(
        self, tx: Transaction, dial: NewCall, now: datetime, trunks: dict[str, Trunk]
    ) -> tuple[PhoneNumber, str | None] | timedelta:
        """Reserve a caller number and pass the dial limits (shared by every node): the
        number and the PBX server of its trunk, or how long to wait."""
        usable = self._trunk_access.usable(trunks, dial.organization_id)
        health = self._number_health
        choice = NumberChoice(
            dial.organization_id,
            dial.number_id,
            dial.number_ids,
            usable,
            prefer_healthy=health.prefer_healthy,
            local_prefix=local_prefix(dial.destination) if health.prefer_local else None,
        )
        number = await tx.reserve_phone_number(choice, now)
        if number is None:
            raise RateLimited(
                "every phone number you can call from is at its concurrent-call limit; "
                "retry when a call has ended",
                error="All phone numbers busy",
            )
        admitted = await admit_dial(
            tx,
            number.trunk,
            dial.organization_id,
            await self._organization_limits.max_calls(tx, dial.organization_id),
            dial.campaign_id,
            dial.campaign_max,
            await tx.clock(),
        )
        if isinstance(admitted, timedelta):
            return admitted
        self._trunk_dials[dial.call_id] = admitted
        # Never originated if the transaction does not commit: nothing would remove it.
        on_failure(lambda: self._trunk_dials.pop(dial.call_id, None))
        return number, _trunk_pbx(trunks.get(number.trunk))

    async def _originate(self, call: Call, dial: NewCall, trunks: dict[str, Trunk]) -> None:
        """Ask the PBX to place ``call`` (stored by ``place``); a failure marks it failed and
        raises the 503 ``ApiError``."""
        call_id = call.id
        trunk = trunks.get(call.trunk or "")
        log.info("call %s: originating to %s", mask_call_id(call_id), mask_number(dial.destination))
        if trunk is None:
            missing = PbxUnavailable(f"trunk {call.trunk!r} is not configured")
            await self._dial_done(call_id)
            await self._record_not_placed(call_id, missing)
        assert call.assistant_phone is not None
        with self._originating.originating(call_id):
            prepare_ahead(self._presynthesizer, call, dial.ring_timeout_seconds)
            try:
                with call_context(call_id):  # the adapter's lines and tasks for this call
                    await self._pbx.originate(
                        OriginateRequest(
                            call_id=call_id,
                            destination=dial.destination,
                            caller_id=call.assistant_phone,
                            trunk_endpoint=trunk.pbx_endpoint,
                            timeout_seconds=dial.ring_timeout_seconds,
                            media_format=trunk.codec,
                            pbx=trunk.pbx,
                        )
                    )
            except Exception as exc:  # noqa: BLE001 - any failure means the call was not placed
                if self._presynthesizer is not None:
                    self._presynthesizer.drop(call_id)
                await self._dial_done(call_id)
                await self._record_not_placed(call_id, exc)
        await self._dial_done(call_id)
        self._ringing.watch(call_id, dial.ring_timeout_seconds)

    async def _dial_done(self, call_id: str) -> None:
        """The trunk's calls-per-second window counts the call from now (the PBX has its
        channel, or never will)."""
        dial_id = self._trunk_dials.pop(call_id, None)
        if dial_id is None:
            return
        try:
            async with self._store.transaction() as tx:
                await tx.dial_done(dial_id, await tx.clock())
        except StoreError as exc:  # it stops counting after a while on its own
            log.warning("call %s: dial not recorded as done: %s", mask_call_id(call_id), exc)

    async def _record_not_placed(self, call_id: str, exc: Exception) -> NoReturn:
        """Mark the call failed and raise the 503; the idempotency record points at the call."""
        error = PBX_UNAVAILABLE if isinstance(exc, PbxUnavailable) else CallError.PBX_ERROR
        log.warning("call %s: originate failed: %s", mask_call_id(call_id), describe(exc))
        problem = not_placed_error(call_id)
        now = self._now()

        def not_placed(call: Call) -> Call | None:
            failed = fail(call, error, now)
            if failed is not None:
                failed.end_reason = NOT_PLACED  # marks the 503 answer for idempotent replays
            return failed

        async with self._store.transaction() as tx:
            await self._timeline.transition(tx, call_id, not_placed, now)
        raise problem from exc


def _trunk_pbx(trunk: Trunk | None) -> str | None:
    """The PBX server a call through ``trunk`` lives on (``None``: the only one)."""
    if trunk is None or not trunk.pbx:
        return None
    return trunk.pbx
