"""Resuming a call after a restart: the ``CallResumer`` of start-up recovery
(``calls/recovery.py``). The PBX adopted the call (its remote leg still up and waiting); it is
served again with the resumed configuration (the resume line first, the earlier turns seeded),
its transcript going on after the messages the previous run stored."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from voicedock.calls.engine import CallEngine
from voicedock.calls.runner.one_call import OneCall
from voicedock.calls.runner.running_call import RunningCall
from voicedock.calls.runner.served import ServedCalls
from voicedock.calls.transitions import SERVICE_RESTART
from voicedock.domain.records import Call, CallMessage, CallStatus
from voicedock.logs import call_context
from voicedock.pbx.base import MediaPbx
from voicedock.store.base import Store


class Resuming:
    def __init__(
        self,
        engine: CallEngine,
        media_pbx: MediaPbx | None,
        store: Store,
        served: ServedCalls,
        one_call: OneCall,
    ) -> None:
        self._engine = engine
        self._media_pbx = media_pbx  # None: a PBX without media, whose calls are not served
        self._store = store
        self._served = served
        self._one_call = one_call

    async def resume(self, call: Call, messages: Sequence[CallMessage]) -> bool:
        """Serve a call the PBX adopted after a restart with its (resumed) configuration, its
        transcript going on after ``messages``. ``True`` once the conversation runs; ``False``
        (or cancelled) when it cannot start: the call is then hung up, its end reason
        ``service-restart``."""
        media_pbx = self._media_pbx
        served = self._served
        if media_pbx is None or not served.started or call.id in served:
            return False
        current = await self._store.get_call(None, call.id)
        if current is None or current.status is not CallStatus.IN_PROGRESS:
            return False  # the caller hung up since the PBX adopted the call: nothing to serve
        if not served.started or call.id in served:
            return False
        running = RunningCall(call.id, resumed=True)
        records = self._engine.records
        records.continue_messages(call.id, messages)
        records.attach(call.id, running)  # from here on a record is owed
        with call_context(call.id):
            served.serve(running, self._one_call.serve(running, call, media_pbx))
        try:
            return await running.wait_started()
        except asyncio.CancelledError:
            running.stop(SERVICE_RESTART)
            raise
