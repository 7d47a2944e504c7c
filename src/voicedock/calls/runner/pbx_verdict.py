"""After a call's media is lost: the PBX's word on the call before voicedock hangs it up.

The media may drop (or fail while it opens) before the PBX link when the PBX itself dies
(FreeSWITCH: the audio stream's websocket first, the restart seen on reconnect): unless the PBX
confirms the call still up, we wait ``PBX_VERDICT_S`` for its word (a crash ends the call
``pbx-restart``) before ending it as a media loss, counted from when the PBX link is up (a
hang-up could not be sent while it is down), at most ``PBX_DOWN_WAIT_S`` in all. A caller the
PBX still has is hung up at once, never kept waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from voicedock.calls.runner.running_call import RunningCall
from voicedock.domain.ids import mask_call_id
from voicedock.errors import PbxError
from voicedock.logs import describe
from voicedock.pbx.base import Pbx, PbxHealth, RoutingPbx

log = logging.getLogger("voicedock.calls")

PBX_VERDICT_S = 10.0
PBX_DOWN_WAIT_S = 60.0
_VERDICT_POLL_S = 0.25
_STILL_UP_CONFIRM_S = 1.0  # a call the PBX still has after a media loss, asked again after


class PbxVerdict:
    def __init__(self, pbx: Pbx, closing: Callable[[], bool]) -> None:
        """``closing``: voicedock is shutting down (no verdict is awaited past it)."""
        self._pbx = pbx
        self._closing = closing

    async def wait(self, running: RunningCall) -> None:
        """Until the PBX reports the call gone (hung up, lost in a restart) or confirms it
        still up (ours to hang up as ``media-lost``): at most ``PBX_VERDICT_S`` with the PBX
        link up, ``PBX_DOWN_WAIT_S`` in all; not past voicedock's shutdown."""
        clock = asyncio.get_running_loop().time
        verdict_by = clock() + PBX_VERDICT_S
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PBX_DOWN_WAIT_S):
                while not (running.remote_gone or self._closing()) and clock() < verdict_by:
                    if not self._health_of(running.call_id).can_place_calls:
                        verdict_by = clock() + PBX_VERDICT_S  # no hang-up could be sent: wait
                    elif await self._still_up(running.call_id) and await self._stays_up(running):
                        return  # the media alone was lost
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(_VERDICT_POLL_S):
                            await running.gone.wait()

    async def _stays_up(self, running: RunningCall) -> bool:
        """The call is still at the PBX ``_STILL_UP_CONFIRM_S`` later: a PBX shutting down
        closes the media streams a moment before it hangs up their calls."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_STILL_UP_CONFIRM_S):
                await running.gone.wait()
        return not running.remote_gone and await self._still_up(running.call_id)

    def _health_of(self, call_id: str) -> PbxHealth:
        """The links of the PBX server carrying the call (several servers: its own)."""
        if isinstance(self._pbx, RoutingPbx):
            return self._pbx.call_health(call_id)
        return self._pbx.health()

    async def _still_up(self, call_id: str) -> bool:
        """The PBX has the call (``False``: gone, or the PBX could not be asked)."""
        try:
            return call_id in await self._pbx.live_call_ids()
        except PbxError as exc:
            log.info("call %s: not found at the PBX: %s", mask_call_id(call_id), describe(exc))
            return False
