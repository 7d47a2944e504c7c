"""Knowledge bases searched by meaning as well as by words, where the operator configures an
OpenAI-compatible embeddings endpoint (``[knowledge.embeddings]``; a local stand-in speaking
its wire format here): each chunk gets its vector at upload, a search embeds its query and
fuses both rankings (``by: hybrid``), so a question that shares no word with the document finds
it; an endpoint that fails refuses the upload (502, nothing stored) and leaves searches to the
words (``by: full_text``). Over REST, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from api.conftest import Api, serving
from api.test_knowledge_api import new_base, refusal, upload
from fakes.embeddings_standin import EmbeddingsStandIn
from fakes.world import ACME, make_settings, org_id
from voicedock.knowledge.search import query_words

pytestmark = pytest.mark.unit

FAQ = """# Riverside Clinic

## Repeat prescriptions
Repeat prescriptions are ready two working days after you ask for them.

## Parking
Patients park for free behind the building; the entrance is on Mill Lane.

## Opening hours
The clinic is open Monday to Friday from eight to six.
"""
# No word of it is in the prescriptions section ("medicine" and "refill" mean the same).
QUESTION = "My medicine refill, is it done?"


@pytest.fixture
async def standin() -> AsyncIterator[EmbeddingsStandIn]:
    async with EmbeddingsStandIn() as running:
        yield running


@pytest.fixture
async def api(database_url: str, standin: EmbeddingsStandIn) -> AsyncIterator[Api]:
    settings = make_settings(database_url)
    settings.knowledge.embeddings.url = standin.url
    settings.knowledge.embeddings.model = "lab-embed-64"
    settings.knowledge.embeddings.api_key = "sk-embeddings-operator"
    async with serving(settings) as running:
        yield running


async def _search(api: Api, base_id: str, query: str) -> dict[str, Any]:
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/search",
        json={"query": query, "max_chunks": 2},
        headers=api.auth(),
    )
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_a_question_without_the_documents_words_is_found_by_meaning(
    api: Api, standin: EmbeddingsStandIn
) -> None:
    base_id = await new_base(api)
    document = {"name": "faq.md", "content_type": "text/markdown", "text": FAQ}
    uploaded = await upload(api, base_id, document)
    embedded = [text for request in standin.requests for text in request.inputs]
    assert len(embedded) == uploaded["chunks"]  # each chunk once, at upload
    assert standin.requests[0].authorization == "Bearer sk-embeddings-operator"
    assert standin.requests[0].model == "lab-embed-64"

    body = await _search(api, base_id, QUESTION)
    assert body["by"] == "hybrid"
    assert "Repeat prescriptions" in body["results"][0]["text"]
    assert standin.requests[-1].inputs == [QUESTION]  # the query's own vector
    # By words alone the question finds nothing of it.
    words = query_words(QUESTION)
    by_words = await api.service.store.search_knowledge(org_id(ACME), [base_id], words, 5)
    assert all("prescriptions" not in hit.text for hit in by_words)

    # Words still count: what both ways find comes first.
    body = await _search(api, base_id, "Where do patients park?")
    assert "Mill Lane" in body["results"][0]["text"]


async def test_an_endpoint_that_fails_refuses_the_upload_and_leaves_searches_to_words(
    api: Api, standin: EmbeddingsStandIn
) -> None:
    base_id = await new_base(api)
    standin.fail = True
    document = {"name": "faq.md", "content_type": "text/markdown", "text": FAQ}
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/documents", json=document, headers=api.auth()
    )
    body = await refusal(resp, 502)
    assert body["error"] == "Embeddings failed"
    assert "sk-embeddings" not in body["message"]
    listed = await api.client.get(f"/knowledge-bases/{base_id}/documents", headers=api.auth())
    assert (await listed.json())["documents"] == []  # nothing stored without its vectors

    standin.fail = False
    await upload(api, base_id, document)
    standin.fail = True  # the query's vector fails: the words still search
    result = await _search(api, base_id, "When is the clinic open?")
    assert result["by"] == "full_text"
    assert "Monday to Friday" in result["results"][0]["text"]
