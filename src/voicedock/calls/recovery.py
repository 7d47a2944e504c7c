"""Start-up recovery: the calls a previous run of voicedock left live are ended, legs and all.

After a crash or ``kill -9`` the store still holds calls ``connecting`` / ``in-progress`` whose
legs are up at the PBX, while the new process has no media, no conversation and no adapter
registry entry for them: the caller would hear silence until they hang up, and the call would
stay ``in-progress`` for good. ``recover_calls`` hangs up every leg and bridge of those calls
(``LeftoverPbx.hang_up_leftovers``), asks the PBX again until none of them is listed, and ends
each call ``ended`` with ``end_reason: "service-restart"``, reported (webhooks, SSE, end-of-call
report) like any end. Everything happens within ``RECOVERY_DEADLINE`` of the start: a PBX that
cannot be reached or keeps listing a leg is logged, and the calls end all the same. Nothing is
re-originated.

The calls are passed in: ``Service.start`` takes every non-terminal call of the store *before*
the PBX connects, so a call this run takes is never among them. With several nodes sharing a
store, the caller passes only the calls this node owned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from voicedock.calls.engine import CallEngine
from voicedock.calls.models import Call
from voicedock.errors import PbxError
from voicedock.pbx.base import LeftoverPbx, Pbx
from voicedock.validation import mask_call_id

log = logging.getLogger("voicedock.calls.recovery")

RECOVERY_DEADLINE = 8.0  # seconds for the hang-ups: the calls end within ~10 s of the start
_RETRY_INTERVAL = 0.25  # a deleted leg may stay listed a moment (ChannelDestroyed ~5 ms)


@dataclass(slots=True)
class Recovery:
    ended: list[str] = field(default_factory=list)  # call ids ended "service-restart"
    legs_left: set[str] = field(default_factory=set)  # ids the PBX still listed at the deadline


async def recover_calls(
    engine: CallEngine,
    pbx: Pbx,
    calls: Sequence[Call],
    *,
    deadline: float = RECOVERY_DEADLINE,
) -> Recovery:
    """Hang up what is left of ``calls`` at the PBX (checked), then end each of them."""
    recovery = Recovery()
    pending = [call for call in calls if not call.status.terminal]
    if not pending:
        return recovery
    log.warning("%d call(s) left live by a previous run: hanging them up", len(pending))
    recovery.legs_left = await _hang_up(
        pbx, {call.id: call.pbx_call_ref for call in pending}, deadline
    )
    for call_id in sorted(recovery.legs_left):
        log.error("call %s: its legs are still at the PBX after the restart", mask_call_id(call_id))
    for call in pending:
        try:
            if await engine.end_after_restart(call.id) is not None:
                recovery.ended.append(call.id)
        except Exception:  # one call's store error must not leave the others live
            log.exception("call %s: not ended after the restart", mask_call_id(call.id))
    return recovery


async def _hang_up(pbx: Pbx, refs: dict[str, str | None], deadline: float) -> set[str]:
    """Until the PBX lists none of the calls' legs (or the deadline): the call ids left."""
    left = set(refs)
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline
    while left:
        try:
            async with asyncio.timeout(max(0.0, until - loop.time())):
                left = await _hang_up_once(pbx, {call_id: refs[call_id] for call_id in left})
        except TimeoutError:
            break
        except PbxError as exc:
            log.warning("leftover legs not hung up yet: %s", exc)
        if not left or loop.time() + _RETRY_INTERVAL >= until:
            break
        await asyncio.sleep(_RETRY_INTERVAL)
    return left


async def _hang_up_once(pbx: Pbx, refs: dict[str, str | None]) -> set[str]:
    if isinstance(pbx, LeftoverPbx):
        return await pbx.hang_up_leftovers(refs)
    # A PBX that cannot name a previous run's legs: its own hang-up, unchecked.
    for call_id in refs:
        try:
            await pbx.hangup(call_id, "normal")
        except PbxError as exc:
            log.warning("call %s: hang-up failed: %s", mask_call_id(call_id), type(exc).__name__)
    return set()
