"""``RunningCall``: one answered call while the runner serves it, from the answer to its stored
record. It is the engine's ``LiveCall`` of the call from the moment the call is answered
(before the media is open): commands that arrive before the conversation runs are replayed on
it once it does (a transfer waits for it); ``stop`` ends the conversation, or its start, as
soon as possible."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING

from voicedock.aio import Supervisor, first_of
from voicedock.calls.commands import API_END_CALL
from voicedock.domain.json import JsonObject
from voicedock.media.listen_tap import ListenTap
from voicedock.pbx.base import TransferTarget
from voicedock.pipeline.frames import ContextSource

if TYPE_CHECKING:  # the audio pipeline is imported when the first call is answered
    from voicedock.calls.live.conversation import LiveConversation
    from voicedock.media.pacer import PacerStats

LiveAction = Callable[["LiveConversation"], Awaitable[None]]


class RunningCall:
    """One answered call's ``LiveCall`` while the runner serves it (before and after the
    conversation exists)."""

    def __init__(
        self, call_id: str, *, resumed: bool = False, answered_at: float | None = None
    ) -> None:
        self.call_id = call_id
        self.resumed = resumed  # adopted after a restart: a failed start is "service-restart"
        # ``time.monotonic()`` when voicedock heard the answer, when the media connected, and
        # the media's output counters (its first speech frame): the call's ``timings``.
        self.answered_at = answered_at
        self.media_connected_at: float | None = None
        self.media_stats: PacerStats | None = None
        self.speech_names: tuple[str | None, str | None] = (None, None)  # STT, TTS providers
        self.provider_switches = 0  # moves of its fallback plans to their next entry
        self.live: LiveConversation | None = None
        self._live_ready = asyncio.Event()
        self.remote_gone = False  # the caller hung up: nothing to hang up any more
        self.gone = asyncio.Event()  # set with remote_gone
        self.transferring = False  # a transfer was asked for on the live call
        self.hung_up = False  # we asked the PBX to hang up
        self.media_open = False
        self.stop_reason: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.setting_up = False  # the task runs (a task cancelled before it ran does nothing)
        self._early: list[LiveAction] = []

    # -- the engine's LiveCall ------------------------------------------------------------
    async def say(self, content: str) -> None:
        await self._forward(lambda live: live.say(content))

    async def inject_context(
        self, content: str, trigger_response: bool, source: ContextSource = "api"
    ) -> None:
        await self._forward(lambda live: live.inject_context(content, trigger_response, source))

    async def hand_over(self, member: str) -> None:
        await self._forward(lambda live: live.hand_over(member))

    def listen_tap(self) -> ListenTap | None:
        """The call's live listeners' tap, once its conversation runs (``calls/listening.py``)."""
        return self.live.listen_tap if self.live is not None else None

    async def end_call(self, message: str | None) -> None:
        if self.live is None and message is None and not self._early:
            # Nothing to finish saying: end now rather than once the media leg is open (it
            # may never open; the caller must not wait on it). A final message waits for it,
            # and so do commands sent before this one (a whisper is in the transcript).
            self.stop(API_END_CALL)
            return
        await self._forward(lambda live: live.end_call(message))

    async def transfer(
        self, target: TransferTarget, announcement: str | None, summary: str | None
    ) -> None:
        # Asked right at the answer, the transfer waits for the conversation (its media leg
        # opening): it speaks the announcement, and the PBX must not act on a caller whose
        # media is still being set up. One that never starts leaves it all to the PBX.
        if self.live is None and (self.task is None or not await self.wait_started()):
            from voicedock.calls.live.conversation import LiveTransferUnsupported

            raise LiveTransferUnsupported("the conversation did not start")
        assert self.live is not None
        self.transferring = True
        await self.live.transfer(target, announcement, summary)
        self.live.stop_recording()  # the caller leaves our media: the recording ends here

    async def _forward(self, action: LiveAction) -> None:
        if self.live is not None:
            await action(self.live)
        else:
            self._early.append(action)

    # -- the runner's side ----------------------------------------------------------------
    def run_in(self, tasks: Supervisor, work: Coroutine[object, object, None]) -> None:
        """Serve the call in a task of ``tasks`` (none when they are closed: ``work`` is not
        run)."""
        self.task = tasks.spawn(work)

    def media_opened(self, stats: PacerStats) -> None:
        """The call's media leg is up: ``stats`` counts what is written to it."""
        self.media_open = True
        self.media_connected_at = time.monotonic()
        self.media_stats = stats

    async def started(self, live: LiveConversation) -> None:
        self.live = live
        self._live_ready.set()
        if self.stop_reason is not None:
            live.end(self.stop_reason)
        early, self._early = self._early, []
        for action in early:
            await action(live)

    async def wait_started(self) -> bool:
        """Until the conversation runs (``True``) or the call's task ended first (``False``)."""
        assert self.task is not None
        await first_of(self._live_ready.wait(), asyncio.wait((self.task,)))  # never raises
        return self.live is not None and self.stop_reason is None and not self.task.done()

    def remote_left(self, reason: str) -> None:
        """The PBX reports the caller gone (hung up, transferred): nothing to hang up."""
        self.remote_gone = True
        self.gone.set()
        self.stop(reason)

    def stop(self, reason: str) -> None:
        """End the call's conversation (or its start) as soon as possible."""
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.live is not None:
            self.live.end(reason)
        elif self.task is not None and self.setting_up:
            self.task.cancel()  # still opening the media: nothing to wind down
        # else the task has not run yet: it finds ``stop_reason`` set and only hangs up

    @property
    def end_reason(self) -> str:
        """Why the call ends: its conversation's reason, else why it was stopped."""
        live = self.live
        if live is not None and live.end_reason is not None:
            return live.end_reason
        return self.stop_reason or "closed"

    def timings(self) -> JsonObject | None:
        """``Call.timings``: ms from the answer to the media connected and to the first audio
        written (None: a resumed call, whose answer was another run's, or no media)."""
        answered, connected = self.answered_at, self.media_connected_at
        if answered is None or connected is None:
            return None
        first = self.media_stats.first_speech_written if self.media_stats else None
        return {
            "media_connected_ms": round((connected - answered) * 1000),
            "first_audio_ms": None if first is None else round((first - answered) * 1000),
        }
