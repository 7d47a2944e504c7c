"""Callers for bench/call_capacity.py: people speaking recorded sentences over chan_websocket.

The PBX side of each call's media, as ``bench/media_load.py``'s generator is for bare media
sessions (the same raw asyncio protocols, one 20 ms clock in ten 2 ms slots, playout with
marks, FLUSH_MEDIA), but each channel is a caller with a script instead of a looped tone:

1. listen: wait for the assistant's greeting (or reply) to be heard and then 0.8 s of quiet
   (at most 3 s when nothing is heard);
2. speak: one of the recorded sentences (Piper, 8 kHz µ-law, silence trimmed), frame by frame,
   then silence;
3. wait for the reply: the first frame of speech received after the sentence's last frame was
   written is the turn's answer (its time kept); none within ``REPLY_TIMEOUT`` is a turn lost.
   A reply's stretches of speech apart by 0.4 s of quiet and its speech frames are counted: a
   gap inside a reply, or a turn answered twice (twice the reply's audio). Then back to 1.

A frame counts as speech when it is not all µ-law silence (0xFF / 0x7F): the node sends
silence between its turns. Times are ``time.monotonic()`` (one clock for every process on the
machine). ``callers_main`` runs it in its own process, pinned to its own core, and answers
``mark`` / ``end`` (its CPU window), ``drain`` (no new sentence), ``mute`` (nothing more
written), ``stats``, ``reset`` and ``stop`` on a pipe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from media_load import (
    FRAME,
    SLOTS,
    Channel,
    Generator,
    Ticker,
    new_loop,
    parse_frames,
    pin,
)

from voicedock.pbx.asterisk.media.websocket_wire import OP_BINARY, OP_TEXT, encode_frame

QUIET_GAP = 0.8  # quiet after a reply before the caller speaks again
FIRST_WAIT = 3.0  # longest wait for a greeting before speaking anyway
REPLY_TIMEOUT = 4.0  # a turn without a reply this long after its end is lost
NEW_REPLY_GAP = 0.4  # speech after this much quiet is a new reply
_OP_CLOSE = 0x8
_SILENCE = (b"\xff", b"\x7f")
LISTEN, SPEAK, WAIT = 0, 1, 2


@dataclass(slots=True)
class Turn:
    ended: float  # when the sentence's last frame was written
    answered: float | None = None  # the first reply frame received
    replies: int = 0  # stretches of reply speech, apart by NEW_REPLY_GAP of quiet
    speech: int = 0  # reply frames of speech received (a reply given twice: twice as many)


def is_speech(payload: bytes) -> bool:
    return bool(payload.strip(b"\xff\x7f"))


class Caller(Channel):
    def __init__(self, generator: Callers) -> None:
        super().__init__(generator)
        self.callers = generator
        self.phase = LISTEN
        self.since = time.monotonic()
        self.heard = 0.0  # the last speech frame received
        self.heard_any = False
        self.sentence: list[bytes] = []
        self.position = 0
        self.turns: list[Turn] = []

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open:
            self._handshake()
            if self.open:
                self.since = time.monotonic()
            return
        for opcode, payload in parse_frames(self.buffer):
            if opcode == OP_BINARY:
                frames = len(payload) // FRAME
                self.received_out += frames
                self.queue.append(frames)
                self.queued += frames
                if is_speech(payload):
                    self._heard(time.monotonic())
                    if self.turns and self.turns[-1].answered is not None:
                        self.turns[-1].speech += frames
            elif opcode == OP_TEXT:
                name, _, argument = payload.decode().partition(" ")
                if name == "MARK_MEDIA":
                    self.queue.append(argument)
                elif name == "FLUSH_MEDIA":
                    self.queue.clear()
                    self.queued = 0
            elif opcode == _OP_CLOSE:
                self._close()

    def _heard(self, now: float) -> None:
        new_reply = not self.heard_any or now - self.heard > NEW_REPLY_GAP
        self.heard, self.heard_any = now, True
        if not new_reply:
            return
        if self.phase == WAIT:
            turn = self.turns[-1]
            turn.answered, turn.replies = now, 1
            self.phase, self.since = LISTEN, now
        elif self.turns:
            self.turns[-1].replies += 1  # a reply to a turn already answered (or lost)

    def next_frame(self, now: float) -> bytes:
        """The caller's frame for this tick, moving the script on."""
        if self.phase == LISTEN:
            quiet = now - self.heard >= QUIET_GAP if self.heard_any else True
            waited = now - self.since
            if not self.callers.draining and (
                (self.heard_any and quiet and waited >= QUIET_GAP)
                or (not self.heard_any and waited >= FIRST_WAIT)
            ):
                self.sentence = self.callers.sentence(len(self.turns) + hash(self.connection_id))
                self.phase, self.position = SPEAK, 0
        elif self.phase == WAIT and now - self.turns[-1].ended > REPLY_TIMEOUT:
            self.phase, self.since = LISTEN, now  # the turn is lost
        if self.phase != SPEAK:
            return self.callers.silence
        frame = self.sentence[self.position]
        self.position += 1
        if self.position == len(self.sentence):
            self.turns.append(Turn(ended=now))
            self.phase = WAIT
        return frame


class Callers(Generator):
    def __init__(self, sentences: list[bytes]) -> None:
        super().__init__()
        self.sentences = [
            [encode_frame(s[i : i + FRAME], OP_BINARY) for i in range(0, len(s) - FRAME + 1, FRAME)]
            for s in sentences
        ]
        self.silence = encode_frame(b"\xff" * FRAME, OP_BINARY)
        self.draining = False  # no new sentence is started
        self.muted = False  # nothing more is written
        self.finished: dict[str, Caller] = {}

    def sentence(self, index: int) -> list[bytes]:
        return self.sentences[index % len(self.sentences)]

    def tick(self, slot: int, _deadline: float) -> None:
        now = time.monotonic()
        for channel in list(self.channels.values())[slot::SLOTS]:
            assert isinstance(channel, Caller)
            if not channel.open:
                self.finished[channel.connection_id] = self.channels.pop(channel.connection_id)
                continue
            frame = channel.next_frame(now)
            channel.tick(None if self.muted else frame)

    def report(self) -> dict[str, Any]:
        """Per call: frames written, frames received, its turns (ended, answered, replies,
        speech frames of the reply)."""
        found: dict[str, Any] = {}
        for cid, channel in {**self.finished, **self.channels}.items():
            assert isinstance(channel, Caller)
            turns = [(t.ended, t.answered, t.replies, t.speech) for t in channel.turns]
            found[cid] = (channel.sent_in, channel.received_out, turns)
        return found


def callers_main(
    conn: Connection, core: int | Collection[int] | None, loop_kind: str, sentences: list[bytes]
) -> None:
    """The callers' process: serve ``/media/<call id>``, report the port, answer the pipe."""
    cores = pin(core)

    async def serve() -> None:
        callers = Callers(sentences)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Caller(callers), "127.0.0.1", 0, backlog=4096)
        conn.send((server.sockets[0].getsockname()[1], cores))
        ticker = asyncio.create_task(Ticker(callers.tick).run())
        requests: asyncio.Queue[Any] = asyncio.Queue()
        loop.add_reader(conn.fileno(), lambda: requests.put_nowait(conn.recv()))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        cpu = 0.0
        while (request := await requests.get()) != "stop":
            if request == "mark":  # the window starts
                cpu0, wall0 = time.process_time(), time.perf_counter()
            elif request == "end":  # it ends
                cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
            elif request == "drain":
                callers.draining = True
            elif request == "mute":
                callers.muted = True
            elif request == "stats":
                conn.send((callers.report(), cpu, len(callers.channels)))
            elif request == "reset":
                callers.channels.clear()
                callers.finished.clear()
                callers.draining = callers.muted = False
        loop.remove_reader(conn.fileno())
        ticker.cancel()
        server.close()

    loop = new_loop(loop_kind)
    try:
        loop.run_until_complete(serve())
    finally:
        loop.close()
