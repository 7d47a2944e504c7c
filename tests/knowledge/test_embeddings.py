"""The embeddings client (``knowledge/embeddings.py``) against an OpenAI-compatible stand-in on
loopback: texts go in batches of 64 with the key as a bearer token, rows come back in order and
of length 1; an error status, a wrong count or dimension, or a tenant's URL the egress guard
refuses is an ``EmbeddingsFailed`` that never holds the key; the stored form round-trips; and
the stand-in's vectors put a question nearer the sentence that answers it in other words."""

from __future__ import annotations

import numpy as np
import pytest

from fakes.embeddings_standin import EmbeddingsStandIn
from voicedock.domain.json import JsonObject
from voicedock.egress import Egress, EgressPolicy
from voicedock.knowledge.embeddings import (
    Embeddings,
    EmbeddingsEndpoint,
    EmbeddingsFailed,
    vector_bytes,
    vector_of,
)

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

KEY = "sk-embed-secret-4242"
QUESTION = "How long until my medicine refill is done?"
ANSWER = "Repeat prescriptions are ready two working days after you ask."
HOURS = "We open at eight and the desk is closed on Sundays."


def endpoint(url: str, *, key: str | None = KEY, tenant: bool = False) -> EmbeddingsEndpoint:
    return EmbeddingsEndpoint(url, "nomic-embed-text", key, timeout_s=5, tenant=tenant)


async def test_batches_of_64_rows_in_order_normalized_with_the_key() -> None:
    texts = [f"text number {'x' * (i % 7)} {i}" for i in range(150)]
    client = Embeddings(None)
    async with EmbeddingsStandIn() as s:
        rows = await client.embed(endpoint(s.url), texts)
        # The stand-in answers rows reversed: they are read by index.
        alone = await client.embed(endpoint(s.url), [texts[100]])
    await client.aclose()
    assert [len(r.inputs) for r in s.requests] == [64, 64, 22, 1]
    assert [t for r in s.requests[:3] for t in r.inputs] == texts
    assert {r.authorization for r in s.requests} == {f"Bearer {KEY}"}
    assert {r.model for r in s.requests} == {"nomic-embed-text"}
    assert rows.shape == (150, 64)
    assert rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(rows[100], alone[0], rtol=1e-6)
    assert not np.allclose(rows[100], rows[99])


async def test_no_key_no_header_and_a_zero_vector_stays_zero() -> None:
    client = Embeddings(None)
    async with EmbeddingsStandIn() as s:
        rows = await client.embed(endpoint(s.url, key=None), ["the and of", "parking"])
        assert (await client.embed(endpoint(s.url), [])).shape == (0, 0)
    await client.aclose()
    assert s.requests[0].authorization is None
    assert not rows[0].any()
    assert np.linalg.norm(rows[1]) == pytest.approx(1.0)


async def test_the_key_is_never_shown() -> None:
    assert KEY not in repr(endpoint("http://127.0.0.1:1/v1"))
    client = Embeddings(None)
    async with EmbeddingsStandIn(fail=True) as s:
        with pytest.raises(EmbeddingsFailed) as failed:
            await client.embed(endpoint(s.url), ["refill"])
    await client.aclose()
    assert failed.value.reason == "the embeddings endpoint answered HTTP 500"
    assert KEY not in str(failed.value)
    assert KEY not in repr(failed.value)
    assert s.requests[0].authorization == f"Bearer {KEY}"


def _drop_last(rows: list[JsonObject]) -> list[JsonObject]:
    return rows[:-1]


def _ragged(rows: list[JsonObject]) -> list[JsonObject]:
    return [{**rows[0], "embedding": [1.0, 2.0]}, *rows[1:]]


def _twice(rows: list[JsonObject]) -> list[JsonObject]:
    return [rows[0], {**rows[1], "index": rows[0]["index"]}]


def _strings(rows: list[JsonObject]) -> list[JsonObject]:
    return [{**row, "embedding": ["0.5"] * 64} for row in rows]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (_drop_last, "wrong number of vectors"),
        (_ragged, "bad dimension"),
        (_twice, "malformed"),
        (_strings, "malformed"),
    ],
)
async def test_a_broken_answer_fails(mangle: object, reason: str) -> None:
    client = Embeddings(None)
    async with EmbeddingsStandIn() as s:
        s.mangle = mangle  # type: ignore[assignment]
        with pytest.raises(EmbeddingsFailed, match=reason):
            await client.embed(endpoint(s.url), ["refill", "parking"])
    await client.aclose()


async def test_too_many_dimensions_fail() -> None:
    client = Embeddings(None)
    async with EmbeddingsStandIn(dims=4097) as s:
        with pytest.raises(EmbeddingsFailed, match="bad dimension"):
            await client.embed(endpoint(s.url), ["refill"])
    await client.aclose()


async def test_a_dead_endpoint_fails() -> None:
    async with EmbeddingsStandIn() as s:
        url = s.url
    client = Embeddings(None)
    with pytest.raises(EmbeddingsFailed, match="could not be reached"):
        await client.embed(endpoint(url), ["refill"])
    await client.aclose()


async def test_a_tenant_endpoint_goes_through_the_egress_guard() -> None:
    async with EmbeddingsStandIn() as s:
        refusals = [
            (Egress(EgressPolicy()), "embeddings URL refused: loopback address"),
            (None, "no egress guard for an organization's endpoint"),
        ]
        for egress, reason in refusals:
            client = Embeddings(egress)
            with pytest.raises(EmbeddingsFailed) as refused:
                await client.embed(endpoint(s.url, tenant=True), ["refill"])
            await client.aclose()
            assert refused.value.reason == reason
        assert s.requests == []
        client = Embeddings(Egress(EgressPolicy(allow_loopback=True)))
        rows = await client.embed(endpoint(s.url, tenant=True), ["refill"])
        assert rows.shape == (1, 64)
        # The operator's own endpoint is trusted: the same guard does not refuse it.
        strict = Embeddings(Egress(EgressPolicy()))
        assert (await strict.embed(endpoint(s.url), ["refill"])).shape == (1, 64)
        await strict.aclose()
    await client.aclose()


async def test_aclose_twice_and_no_use_after() -> None:
    client = Embeddings(Egress(EgressPolicy(allow_loopback=True)))
    await client.aclose()  # never opened
    async with EmbeddingsStandIn() as s:
        await client.aclose()
        with pytest.raises(EmbeddingsFailed, match="stopping"):
            await client.embed(endpoint(s.url), ["refill"])
    client = Embeddings(None)
    async with EmbeddingsStandIn() as s:
        await client.embed(endpoint(s.url), ["refill"])
    await client.aclose()
    await client.aclose()


def test_the_stored_form_round_trips() -> None:
    row = np.array([0.25, -1.5, 3.0e-7, 0.0], dtype=np.float32)
    data = vector_bytes(row)
    assert data == row.astype("<f4").tobytes()
    assert len(data) == 16
    back = vector_of(data)
    assert back.dtype == np.float32
    assert np.array_equal(back, row)
    back[0] = 1.0  # a vector of its own, not a view of the bytes
    with pytest.raises(ValueError, match="whole float32"):
        vector_of(b"\0\0\0")


async def test_the_question_is_nearer_its_answer_than_the_opening_hours() -> None:
    client = Embeddings(None)
    async with EmbeddingsStandIn() as s:
        question, answer, hours = await client.embed(endpoint(s.url), [QUESTION, ANSWER, HOURS])
    await client.aclose()
    assert float(question @ answer) > 0.3
    assert float(question @ answer) > float(question @ hours) + 0.2
