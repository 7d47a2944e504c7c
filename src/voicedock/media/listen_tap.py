"""``ListenTap``: a live call's two sides, as voicedock's media carries them, for listeners.

The tap is fed where the call recording is fed (``LiveConversation``): the caller's frames as
they arrive from the PBX, the assistant's as the pacer hands them over at their due time (what
the caller hears; speech cut by a barge-in never reaches it). Each frame becomes one binary
message, built once and shared by every listener::

    offset 0  u8   channel: 0 the caller, 1 the assistant
    offset 1  u8   flags (0)
    offset 2  u16  the channel's frame sequence number (little-endian, wraps at 65536)
    offset 4  u32  the frame's time in ms since the tap started (little-endian)
    offset 8  ...  16-bit signed little-endian PCM, mono, at the call's media rate

A listener holds at most ``max_frames`` frames; when a slow listener's queue is full the
OLDEST frame is dropped and counted (``Listener.dropped``), so the call never waits for a
listener and a listener that catches up hears the present, not the past. Feeding the tap is
synchronous and cheap; nothing is encoded while nobody listens. ``end(reason)`` ends every
listener (the call is over) and refuses new ones.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import deque
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from voicedock.errors import MediaError

CALLER = 0
ASSISTANT = 1
CHANNEL_NAMES = {CALLER: "caller", ASSISTANT: "assistant"}
HEADER = struct.Struct("<BBHI")  # channel, flags, sequence, time in ms
SAMPLE_FORMAT = "s16le"


class ListenEnded(MediaError):
    """The call's media is over: nobody can start listening to it any more."""


class Listener:
    """One listener's frames (``async for frame in listener``), until the call ends or the
    listener is closed; at most ``max_frames`` are held, the oldest dropped first."""

    def __init__(self, tap: ListenTap, max_frames: int) -> None:
        if max_frames < 1:
            raise ValueError("a listener holds at least one frame")
        self._tap = tap
        self._frames: deque[bytes] = deque()
        self._max = max_frames
        self._ready = asyncio.Event()
        self.dropped = 0  # frames dropped because this listener fell behind
        self.delivered = 0  # frames handed to the listener
        self.end_reason: str | None = None  # set when the tap ended (the call is over)
        self._closed = False

    @property
    def queued(self) -> int:
        return len(self._frames)

    @property
    def sample_rate(self) -> int:
        return self._tap.sample_rate

    def put(self, frame: bytes) -> None:
        """Queue ``frame`` (never waits): a full queue drops its oldest frame."""
        if self._closed:
            return
        if len(self._frames) >= self._max:
            self._frames.popleft()
            self.dropped += 1
            self._tap.dropped += 1
        self._frames.append(frame)
        self._ready.set()

    def end(self, reason: str) -> None:
        """No more frames: the queued ones are still handed out, then iteration stops."""
        if self.end_reason is None:
            self.end_reason = reason
        self._ready.set()

    async def take(self) -> list[bytes]:
        """Every frame queued now, waiting for one; ``[]`` once the call ended (or the listener
        was closed) and nothing is left."""
        if not await self._frames_ready():
            return []
        frames = list(self._frames)
        self._frames.clear()
        self.delivered += len(frames)
        return frames

    async def _frames_ready(self) -> bool:
        """Wait for a queued frame: True when one is there, False once the call ended (or the
        listener was closed) and nothing is left."""
        while not self._frames:
            if self.end_reason is not None or self._closed:
                return False
            self._ready.clear()
            await self._ready.wait()
        return True

    def __aiter__(self) -> Listener:
        return self

    async def __anext__(self) -> bytes:
        if not await self._frames_ready():
            raise StopAsyncIteration
        self.delivered += 1
        return self._frames.popleft()

    def close(self) -> None:
        """Stop listening (idempotent): the tap forgets this listener."""
        if not self._closed:
            self._closed = True
            self._frames.clear()
            self._ready.set()
            self._tap.forget(self)


class ListenTap:
    """One call's fan-out to its listeners. ``on_active(True)`` when the first listener comes,
    ``on_active(False)`` when the last one leaves (the owner feeds the tap only meanwhile)."""

    def __init__(
        self,
        sample_rate: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_active: Callable[[bool], None] | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self._clock = clock
        self._t0 = clock()
        self._on_active = on_active
        self._listeners: list[Listener] = []
        self._sequence = [0, 0]
        self.dropped = 0  # over every listener of the call
        self.end_reason: str | None = None

    @property
    def active(self) -> bool:
        return bool(self._listeners)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def listen(self, max_frames: int) -> Listener:
        """A new listener, or ``ListenEnded`` once the call is over."""
        if self.end_reason is not None:
            raise ListenEnded("the call's media has ended")
        listener = Listener(self, max_frames)
        self._listeners.append(listener)
        if len(self._listeners) == 1 and self._on_active is not None:
            self._on_active(True)
        return listener

    def forget(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
            if not self._listeners and self._on_active is not None:
                self._on_active(False)

    # -- the two sides ----------------------------------------------------------------------
    def caller(self, samples: NDArray[np.int16], at: float | None = None) -> None:
        """A frame from the caller, received at ``at`` (the tap's clock; default now)."""
        self._fan_out(CALLER, samples, at)

    def assistant(self, samples: NDArray[np.int16], at: float | None = None) -> None:
        """A frame the pacer sent to the caller, due at ``at``."""
        self._fan_out(ASSISTANT, samples, at)

    def _fan_out(self, channel: int, samples: NDArray[np.int16], at: float | None) -> None:
        if not self._listeners:
            return
        now = self._clock() if at is None else at
        ms = max(0, round((now - self._t0) * 1000)) & 0xFFFFFFFF
        sequence = self._sequence[channel]
        self._sequence[channel] = (sequence + 1) & 0xFFFF
        frame = HEADER.pack(channel, 0, sequence, ms) + np.asarray(samples, "<i2").tobytes()
        for listener in self._listeners:
            listener.put(frame)

    def end(self, reason: str) -> None:
        """The call is over: every listener ends (after its queued frames); idempotent."""
        if self.end_reason is not None:
            return
        self.end_reason = reason
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.end(reason)
        if listeners and self._on_active is not None:
            self._on_active(False)
