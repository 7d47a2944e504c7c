"""Embeddings of knowledge chunks and queries: the texts sent to an OpenAI-compatible
embeddings endpoint (``POST {url}/embeddings``) and its vectors read back, one L2-normalized
float32 row per text, so that a dot product is a cosine.

The endpoint is the operator's (trusted, a plain session) or an organization's (``tenant``: the
URL is checked by the egress guard before each request and at connect time). Either way the
texts go in batches of at most ``BATCH``, each request within the endpoint's timeout, redirects
not followed, each answer read to at most ``MAX_ANSWER_BYTES``. Every failure is an
``EmbeddingsFailed`` whose reason names neither the key nor the URL's secrets.

A vector is stored as its float32 little-endian bytes (``vector_bytes``, ``vector_of``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
import numpy as np
import numpy.typing as npt

from voicedock.domain.json import JsonValue, json_object
from voicedock.domain.webhooks import redact
from voicedock.egress import Egress
from voicedock.egress.caps import MIB, read_at_most
from voicedock.egress.lazy_session import LazySession
from voicedock.errors import UnsafeUrl

log = logging.getLogger("voicedock.knowledge")

Vectors = npt.NDArray[np.float32]

BATCH = 64  # texts per request
MAX_DIMS = 4096
# 64 rows of 4096 floats, written at up to ~24 characters each.
MAX_ANSWER_BYTES = 8 * MIB
USER_AGENT = "voicedock-embeddings/0.1"


@dataclass(frozen=True, slots=True)
class EmbeddingsEndpoint:
    """Where texts are embedded: ``url`` is the base (``http://127.0.0.1:8081/v1``)."""

    url: str
    model: str
    api_key: str | None = field(repr=False)  # a secret: never shown
    timeout_s: float = 10.0
    # An organization named the URL: it goes through the egress guard. Said at every use.
    tenant: bool = field(kw_only=True)


# Where an organization's chunks and queries are embedded (None: nowhere, full text only).
EndpointFor = Callable[[str], Awaitable[EmbeddingsEndpoint | None]]


def fixed_endpoint(endpoint: EmbeddingsEndpoint | None) -> EndpointFor:
    """``endpoint`` for every organization (the operator's, or none)."""

    async def endpoint_for(_organization_id: str) -> EmbeddingsEndpoint | None:
        return endpoint

    return endpoint_for


class EmbeddingsFailed(Exception):
    """No usable embeddings; ``reason`` is short and safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Embeddings:
    """The node's embeddings client: one plain session for the operator's endpoints, one
    guarded by ``egress`` for the organizations' (none: their endpoints are refused)."""

    def __init__(self, egress: Egress | None) -> None:
        self._egress = egress
        headers = {"User-Agent": USER_AGENT}
        self._plain = LazySession(lambda: aiohttp.ClientSession(headers=headers), _stopping)
        self._guarded = (
            None
            if egress is None
            else LazySession(lambda: egress.session(headers=headers), _stopping)
        )

    async def aclose(self) -> None:
        await self._plain.aclose()
        if self._guarded is not None:
            await self._guarded.aclose()

    async def embed(self, endpoint: EmbeddingsEndpoint, texts: Sequence[str]) -> Vectors:
        """One normalized row per text, in order (``len(texts)`` × dims)."""
        rows: list[npt.NDArray[np.float64]] = []
        for start in range(0, len(texts), BATCH):
            batch = await self._batch(endpoint, list(texts[start : start + BATCH]))
            if rows and batch.shape[1] != rows[0].shape[1]:
                raise EmbeddingsFailed("the embeddings endpoint changed its dimension")
            rows.append(batch)
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        matrix = np.concatenate(rows)
        # Each row scaled to at most 1 first (no square overflows), then to length 1; a zero
        # row stays zero.
        matrix = _divided(matrix, np.abs(matrix).max(axis=1, keepdims=True))
        return _divided(matrix, np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)

    async def _batch(
        self, endpoint: EmbeddingsEndpoint, texts: list[str]
    ) -> npt.NDArray[np.float64]:
        url = endpoint.url.rstrip("/") + "/embeddings"
        headers = {"Content-Type": "application/json"}
        if endpoint.api_key:
            headers["Authorization"] = f"Bearer {endpoint.api_key}"
        body = json.dumps({"model": endpoint.model, "input": texts}).encode()
        try:
            async with asyncio.timeout(endpoint.timeout_s):
                if endpoint.tenant:
                    if self._egress is None or self._guarded is None:
                        raise EmbeddingsFailed("no egress guard for an organization's endpoint")
                    await self._egress.check(url)
                    http = self._guarded.get()
                else:
                    http = self._plain.get()
                async with http.post(
                    url, data=body, headers=headers, allow_redirects=False
                ) as response:
                    if not 200 <= response.status < 300:
                        raise EmbeddingsFailed(
                            f"the embeddings endpoint answered HTTP {response.status}"
                        )
                    raw = await read_at_most(response.content, MAX_ANSWER_BYTES)
        except UnsafeUrl as exc:
            raise EmbeddingsFailed(f"embeddings URL refused: {exc.reason}") from None
        except TimeoutError:
            raise EmbeddingsFailed("the embeddings endpoint timed out") from None
        except (aiohttp.ClientError, OSError) as exc:
            log.info("embeddings endpoint %s: %s", redact(url), type(exc).__name__)
            raise EmbeddingsFailed("the embeddings endpoint could not be reached") from None
        if len(raw) > MAX_ANSWER_BYTES:
            raise EmbeddingsFailed("the embeddings endpoint's answer is too large")
        return _rows(raw, len(texts))


def _rows(raw: bytes, count: int) -> npt.NDArray[np.float64]:
    """The ``count`` vectors of an answer, ordered by ``index`` (``EmbeddingsFailed`` if it
    is not one well-formed vector of one dimension per text)."""
    try:
        decoded: JsonValue = json.loads(raw)
    except (ValueError, RecursionError):
        raise EmbeddingsFailed("the embeddings endpoint's answer is not JSON") from None
    answer = json_object(decoded)
    data = answer.get("data") if answer is not None else None
    if not isinstance(data, list) or len(data) != count:
        raise EmbeddingsFailed("the embeddings endpoint answered the wrong number of vectors")
    ordered: list[list[JsonValue] | None] = [None] * count
    for item in data:
        row = json_object(item)
        index = row.get("index") if row is not None else None
        vector = row.get("embedding") if row is not None else None
        if (
            not isinstance(index, int)
            or not 0 <= index < count
            or ordered[index] is not None
            or not isinstance(vector, list)
            or not all(type(x) in (float, int) for x in vector)
        ):
            raise EmbeddingsFailed("the embeddings endpoint's answer is malformed")
        ordered[index] = vector
    dims = {len(v) for v in ordered if v is not None}
    if len(dims) != 1 or not 0 < next(iter(dims)) <= MAX_DIMS:
        raise EmbeddingsFailed("the embeddings endpoint's vectors have a bad dimension")
    try:
        matrix = np.array(ordered, dtype=np.float64)
    except (OverflowError, ValueError):
        matrix = np.array([[np.inf]])
    if not np.isfinite(matrix).all():
        raise EmbeddingsFailed("the embeddings endpoint's vectors are not finite")
    return matrix


def _divided(
    matrix: npt.NDArray[np.float64], by: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    return np.divide(matrix, by, out=np.zeros_like(matrix), where=by > 0)


def _stopping() -> EmbeddingsFailed:
    return EmbeddingsFailed("voicedock is stopping")


def vector_bytes(row: Vectors) -> bytes:
    """A vector's stored form: float32 little-endian."""
    return np.asarray(row, dtype="<f4").tobytes()


def vector_of(data: bytes) -> Vectors:
    """The vector ``vector_bytes`` stored."""
    if len(data) % 4:
        raise ValueError("a stored vector is whole float32 values")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


__all__ = [
    "BATCH",
    "MAX_DIMS",
    "Embeddings",
    "EmbeddingsEndpoint",
    "EmbeddingsFailed",
    "EndpointFor",
    "fixed_endpoint",
    "vector_bytes",
    "vector_of",
]
