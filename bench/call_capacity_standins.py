"""The cloud providers and the webhook receiver of bench/call_capacity.py, in one cheap process.

One aiohttp server on 127.0.0.1 speaking the providers' wire formats, each answer delayed by a
configured time (what the bench subtracts from a turn to get the node's own share):

* ``POST /v1/listen``: Deepgram's pre-recorded transcription (the WAV of the caller's turn in,
  the ``results.channels[0].alternatives[0].transcript`` JSON out), after ``stt_delay``. This is
  what the conversation engine calls with Deepgram: it transcribes the turn once endpointing
  ended it (``TurnEngine`` uses ``transcribe()``; the live socket is not used by a turn);
* ``POST /v1/chat/completions``: an OpenAI-compatible streamed chat completion (the SSE body of
  ``tests/fakes/llm_standin.py``), its first token after ``llm_delay``; the end-of-call
  analysis (its prompt asks for a sentiment) gets the JSON answer it asks for;
* ``POST /v1/audio/speech``: OpenAI's speech, ``response_format = "pcm"`` (24 kHz 16-bit), a
  tone the length of the text's reading (0.25 s a word), its first bytes after ``tts_delay``;
* ``POST /hooks``: the webhook receiver: counts every delivery by call and event type.

``standins_main`` runs it in its own process (pinned to a core) and answers ``stats`` /
``stop`` on a pipe. It never keeps what it received beyond the counts.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Collection
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]

TTS_RATE = 24_000
WORD_SECONDS = 0.25  # the voice's pace: a reply of 8 words is 2 s of audio
REPLY = "Sure, we are open from nine to five."
TRANSCRIPT = "What time are you open tomorrow?"
ANALYSIS = '{"summary": "The caller asked when the shop opens.", "sentiment": 7}'


def _sse(doc: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


def chat_stream(text: str, model: str) -> tuple[bytes, bytes]:
    """The streamed completion: (the role chunk and first word, the rest) as OpenAI sends them."""

    def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        doc = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1694268190}
        return _sse({**doc, "model": model, "choices": [choice]})

    words = text.split(" ")
    first = chunk({"role": "assistant", "content": ""}) + chunk({"content": words[0]})
    rest = b"".join(chunk({"content": " " + w}) for w in words[1:])
    return first, rest + chunk({}, "stop") + b"data: [DONE]\n\n"


def speech_pcm(seconds: float) -> bytes:
    """A 24 kHz 16-bit tone with a syllable-like envelope: never silent to the caller."""
    t = np.arange(int(TTS_RATE * seconds)) / TTS_RATE
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return (6000 * envelope * np.sin(2 * np.pi * 180 * t)).astype("<i2").tobytes()


class StandIns:
    def __init__(self, stt_delay: float, llm_delay: float, tts_delay: float) -> None:
        self.stt_delay, self.llm_delay, self.tts_delay = stt_delay, llm_delay, tts_delay
        self.requests: Counter[str] = Counter()
        self.deliveries: Counter[tuple[str, str]] = Counter()  # (call id, event type)
        self.late: list[float] = []  # how much later than configured each answer started
        self._listen = json.dumps(
            {
                "metadata": {"request_id": "bench", "duration": 2.0, "channels": 1},
                "results": {
                    "channels": [{"alternatives": [{"transcript": TRANSCRIPT, "confidence": 0.98}]}]
                },
            }
        ).encode()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 << 20)
        app.router.add_post("/v1/listen", self.listen)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/audio/speech", self.speech)
        app.router.add_post("/hooks", self.hook)
        return app

    async def _wait(self, since: float, delay: float) -> None:
        await asyncio.sleep(max(0.0, since + delay - time.monotonic()))
        self.late.append(time.monotonic() - since - delay)

    async def listen(self, request: web.Request) -> web.Response:
        since = time.monotonic()
        await request.read()
        self.requests["stt"] += 1
        await self._wait(since, self.stt_delay)
        return web.Response(body=self._listen, content_type="application/json")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        since = time.monotonic()
        body = await request.json()
        self.requests["llm"] += 1
        system = str((body.get("messages") or [{}])[0].get("content", ""))
        reply = ANALYSIS if "sentiment" in system else REPLY  # the end-of-call analysis
        first, rest = chat_stream(reply, str(body.get("model", "gpt-4o-mini")))
        await self._wait(since, self.llm_delay)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(first)
        await response.write(rest)
        await response.write_eof()
        return response

    async def speech(self, request: web.Request) -> web.StreamResponse:
        since = time.monotonic()
        words = len(str((await request.json()).get("input", "")).split())
        pcm = speech_pcm(max(1, words) * WORD_SECONDS)
        self.requests["tts"] += 1
        await self._wait(since, self.tts_delay)
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await response.prepare(request)
        step = TTS_RATE * 2 // 5  # 200 ms pieces, as a streaming voice sends them
        for i in range(0, len(pcm), step):
            await response.write(pcm[i : i + step])
        await response.write_eof()
        return response

    async def hook(self, request: web.Request) -> web.Response:
        doc = await request.json()
        self.requests["webhook"] += 1
        self.deliveries[(str(doc.get("call_id", "")), str(doc.get("type", "")))] += 1
        return web.Response(status=204)

    def stats(self) -> dict[str, Any]:
        late = np.asarray(self.late or [0.0]) * 1000
        found = {
            "requests": dict(self.requests),
            "deliveries": {f"{c} {t}": n for (c, t), n in self.deliveries.items()},
            "late_p50_ms": float(np.percentile(late, 50)),
            "late_p99_ms": float(np.percentile(late, 99)),
        }
        self.late.clear()
        return found


def standins_main(
    conn: Connection,
    core: int | Collection[int] | None,
    delays: tuple[float, float, float],
    loop_kind: str,
) -> None:
    """The stand-ins' process: serve, report the port, answer ``stats`` / ``stop``."""
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from media_load import new_loop, pin

    pin(core)

    async def serve() -> None:
        standins = StandIns(*delays)
        runner = web.AppRunner(standins.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        server = site._server
        assert server is not None
        conn.send(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        loop = asyncio.get_running_loop()
        requests: asyncio.Queue[str] = asyncio.Queue()
        loop.add_reader(conn.fileno(), lambda: requests.put_nowait(conn.recv()))
        while (request := await requests.get()) != "stop":
            if request == "stats":
                conn.send(standins.stats())
        loop.remove_reader(conn.fileno())
        await runner.cleanup()

    loop = new_loop(loop_kind)
    try:
        loop.run_until_complete(serve())
    finally:
        loop.close()
