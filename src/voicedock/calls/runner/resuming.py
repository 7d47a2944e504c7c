"""Resuming a call after a restart: the ``CallResumer`` of start-up recovery
(``calls/recovery.py``). The PBX adopted the call (its remote leg still up and waiting); it is
served again with the resumed configuration (the resume line first, the earlier turns seeded),
its transcript going on after the messages the previous run stored."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from voicedock.calls.runner.one_call import OneCall
from voicedock.calls.runner.running_call import RunningCall
from voicedock.calls.transitions import SERVICE_RESTART
from voicedock.domain.records import Call, CallMessage, CallStatus
from voicedock.logs import call_context
from voicedock.pbx.base import MediaPbx
from voicedock.store.base import Store


class Resuming:
    def __init__(self, media_pbx: MediaPbx | None, store: Store, one_call: OneCall) -> None:
        self._media_pbx = media_pbx  # None: a PBX without media, whose calls are not served
        self._store = store
        self._one_call = one_call

    async def resume(self, call: Call, messages: Sequence[CallMessage]) -> bool:
        """Serve a call the PBX adopted after a restart with its (resumed) configuration, its
        transcript going on after ``messages``. ``True`` once the conversation runs; ``False``
        (or cancelled) when it cannot start: the call is then hung up, its end reason
        ``service-restart``."""
        media_pbx = self._media_pbx
        if media_pbx is None:
            return False
        current = await self._store.get_call(None, call.id)
        if current is None or current.status is not CallStatus.IN_PROGRESS:
            return False  # the caller hung up since the PBX adopted the call: nothing to serve
        running = RunningCall(call.id, resumed=True)
        with call_context(call.id):
            if not self._one_call.start(running, call, media_pbx, earlier=messages):
                return False  # not started, or served already
        try:
            return await running.wait_started()
        except asyncio.CancelledError:
            running.stop(SERVICE_RESTART)
            raise
