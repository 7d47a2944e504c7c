"""An OpenAI-compatible embeddings server on loopback whose vectors mean something: each word
of a text (lower-case letters, a few stop words left out) stands for a concept of a small
synonym table (``refill``, ``prescription`` and ``medicine`` all for "medication"), or for
itself, and is hashed to one of ``dims`` dimensions; the counts are the vector. So two texts
about the same thing in other words share dimensions, as real embeddings would have them.

    async with EmbeddingsStandIn() as s:      # fail=True: every request answers 500
        s.url                                 # http://127.0.0.1:<port>/v1
        s.requests                            # what each request asked: inputs, Authorization
        s.mangle = lambda rows: rows[:-1]     # change the next answers' rows (a broken server)
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from voicedock.domain.json import JsonObject

_CONCEPTS = {
    "medication": "refill refills repeat prescription prescriptions medicine medicines medication",
    "hours": "open opening hours closing closed",
    "parking": "park parking car",
    "price": "price cost fee pay charge",
    "appointment": "book appointment visit schedule",
    "time": "ready take days wait long",
}
CONCEPT = {word: concept for concept, words in _CONCEPTS.items() for word in words.split()}
_STOP = "a an and are after the is my to you your of how do does until it"
STOP_WORDS = frozenset(_STOP.split())
_WORD = re.compile(r"[a-z]+")


def semantic_vector(text: str, dims: int = 64) -> list[float]:
    """The stand-in's vector of ``text`` (not normalized: the client does that)."""
    vector = [0.0] * dims
    for word in _WORD.findall(text.lower()):
        if word not in STOP_WORDS:
            vector[zlib.crc32(CONCEPT.get(word, word).encode()) % dims] += 1.0
    return vector


@dataclass(frozen=True)
class EmbeddingsRequest:
    model: str
    inputs: list[str]
    authorization: str | None


class EmbeddingsStandIn:
    def __init__(self, *, dims: int = 64, fail: bool = False) -> None:
        self.dims = dims
        self.fail = fail
        self.requests: list[EmbeddingsRequest] = []
        self.mangle: Callable[[list[JsonObject]], list[JsonObject]] | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> EmbeddingsStandIn:
        app = web.Application()
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _embeddings(self, request: web.Request) -> web.Response:
        asked = await request.json()
        inputs = [str(text) for text in asked["input"]]
        auth = request.headers.get("Authorization")
        self.requests.append(EmbeddingsRequest(str(asked["model"]), inputs, auth))
        if self.fail:
            return web.json_response({"error": {"message": "model not loaded"}}, status=500)
        rows: list[JsonObject] = [
            {"object": "embedding", "index": i, "embedding": list(semantic_vector(t, self.dims))}
            for i, t in enumerate(inputs)
        ]
        rows.reverse()  # order is by "index", not by place
        if self.mangle is not None:
            rows = self.mangle(rows)
        return web.json_response({"object": "list", "data": rows, "model": asked["model"]})
