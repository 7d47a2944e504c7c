"""OpenAI's speech endpoints on 127.0.0.1 (port 0), for tests and benches that need a cloud
STT or TTS the caller can hear and the test can break.

    async with SpeechStandIn(transcript="I need a dentist.") as cloud:
        stt_config = {"provider": "openai", "base_url": cloud.base_url, "api_key": "sk-..."}
        ...
        cloud.fail_all(500)              # from now on every request fails
        assert cloud.spoken == [...]     # the texts it was asked to synthesize

* ``POST /v1/audio/speech`` (``response_format = "pcm"``): 24 kHz 16-bit mono, a tone as long
  as the text's reading (``word_s`` a word) with a syllable-like envelope (loud in every 5 ms
  window: ``voicedock_lab.heard`` finds it in a recording), streamed in 200 ms pieces;
* ``POST /v1/audio/transcriptions``: ``{"text": transcript}`` for the uploaded turn.

``answers`` (None: no limit) is how many requests it answers before failing every later one
with ``status_after``, so a provider that breaks midway breaks at a known request without a
race against the call. Every request is recorded (``requests``; ``at``: when it arrived on the
event loop's clock), failed or not.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import numpy as np
from aiohttp import web

from fakes.local_server import LocalServer, Recorded

RATE = 24_000  # OpenAI's response_format = "pcm"
SPEECH_PATH = "/v1/audio/speech"
TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"


def tone(seconds: float, rate: int = RATE) -> bytes:
    """16-bit PCM: a 180 Hz tone whose loudness rises and falls four times a second."""
    t = np.arange(int(rate * seconds)) / rate
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return (6000 * envelope * np.sin(2 * np.pi * 180 * t)).astype("<i2").tobytes()


@dataclass
class SpeechStandIn:
    """The stand-in server; use as ``async with SpeechStandIn(...) as cloud``."""

    transcript: str = "What time are you open tomorrow?"
    word_s: float = 0.25  # the voice's pace
    answers: int | None = None  # requests answered before every later one fails
    status_after: int = 500
    requests: list[Recorded] = field(default_factory=list)
    at: list[float] = field(default_factory=list)  # each request's arrival (loop time)
    spoken: list[str] = field(default_factory=list)  # the texts asked of /audio/speech
    _server: LocalServer = field(default_factory=LocalServer)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def base_url(self) -> str:
        """What a section's ``base_url`` names (``.../v1``)."""
        return self._server.url + "/v1"

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: what the operator lists in ``[egress] provider_hosts``."""
        return f"127.0.0.1:{self._server.port}"

    async def __aenter__(self) -> SpeechStandIn:
        self._server.route("POST", SPEECH_PATH, self._speech)
        self._server.route("POST", TRANSCRIPTIONS_PATH, self._transcription)
        await self._server.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.__aexit__(*exc)

    def fail_all(self, status: int = 500) -> None:
        """Fail every request from now on with ``status``."""
        self.answers, self.status_after = len(self.requests), status

    async def wait_request(self, count: int = 1, timeout: float = 10.0) -> Recorded:
        """The ``count``-th request (1-based), waiting for it to arrive."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests[count - 1]

    async def _received(self, request: web.Request) -> tuple[Recorded, web.Response | None]:
        """The request recorded, and the error it gets when the stand-in has stopped
        answering (None: answer it)."""
        arrived = asyncio.get_running_loop().time()
        recorded = await self._server.record(request)
        self._server.requests.remove(recorded)  # kept here, in order with ``at``
        async with self._arrived:
            self.requests.append(recorded)
            self.at.append(arrived)
            self._arrived.notify_all()
        if self.answers is not None and len(self.requests) > self.answers:
            error = {"error": {"message": "The server had an error", "type": "server_error"}}
            return recorded, web.json_response(error, status=self.status_after)
        return recorded, None

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        recorded, failed = await self._received(request)
        text = str(json.loads(recorded.body).get("input", ""))
        self.spoken.append(text)
        if failed is not None:
            return failed
        pcm = tone(max(1, len(text.split())) * self.word_s)
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await response.prepare(request)
        step = RATE * 2 // 5  # 200 ms pieces, as a streaming voice sends them
        for start in range(0, len(pcm), step):
            await response.write(pcm[start : start + step])
        await response.write_eof()
        return response

    async def _transcription(self, request: web.Request) -> web.StreamResponse:
        _, failed = await self._received(request)
        if failed is not None:
            return failed
        return web.json_response({"text": self.transcript})
