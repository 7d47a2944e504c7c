"""A clinic's knowledge base on a real call: its FAQ uploaded through REST
(``/knowledge-bases``), an assistant that names it, a call placed through REST to the lab's
question party (it asks "How long does a repeat prescription take to be ready?", which only the
FAQ answers) → Whisper → the retrieval → the OpenAI-compatible stand-in, whose request carries
the FAQ's chunk → what the call says; the call's record holds the search (a ``knowledge`` event
with the chunk) and the turn's ``retrieval_ms``.

Each turn's words searched (``every_turn``) on SQLite, the model's ``search_knowledge`` tool on
PostgreSQL: both backends' full-text search, both ways of retrieving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import require_offline_speech
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from e2e.test_tools_e2e import _wait_said
from fakes.llm_standin import ChatRequest, LlmStandIn, ToolCalls
from pg_server import fresh_database
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

QUESTION_PARTY = "+31612345682"
GREETING = "Riverside Clinic, how can I help?"
ANSWER = "Repeat prescriptions are ready two working days after you ask."
UNKNOWN = "I do not know that, sorry."
FAQ = """# Riverside Clinic: questions patients ask

## Opening hours
The clinic is open Monday to Friday from eight in the morning to six in the evening.

## Repeat prescriptions
A repeat prescription is ready **two working days** after you ask for it. Collect it at the
pharmacy desk on the ground floor.

## Parking
Patients park for free behind the building; the entrance is on Mill Lane.
"""
CHUNK_WORDS = "two working days"


def knows(request: ChatRequest) -> str | ToolCalls:
    """Answers from what the knowledge base gave it (a system message of this turn, or the
    result of its ``search_knowledge``); offered the tool and not yet told, searches."""
    told = " ".join(str(m.get("content") or "") for m in request.messages[1:])
    if CHUNK_WORDS in told:
        return ANSWER
    if "search_knowledge" in request.tool_names and not any(
        m.get("role") == "tool" for m in request.messages
    ):
        return ToolCalls((("search_knowledge", {"query": "repeat prescription ready"}),))
    return UNKNOWN


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    require_offline_speech()
    await WhisperStt().warm_up()
    await PiperTts().warm_up()
    async with LlmStandIn(reply=knows) as standin:
        yield standin


async def _live(lab: LabAsterisk, database: Path, llm: LlmStandIn, url: str | None) -> LiveService:
    settings = service_settings(lab, database, "ari")
    if url is not None:
        settings.database.url = url
    settings.speech.openai_base_url = llm.base_url
    settings.speech.openai_api_key = "sk-lab-operator"
    return await serve(settings)


async def _faq_base(live: LiveService) -> str:
    """The clinic's FAQ uploaded as a Markdown document of a new knowledge base."""
    resp = await live.client.post(
        "/knowledge-bases", json={"name": "Clinic FAQ"}, headers=live.auth()
    )
    assert resp.status == 201, await resp.text()
    base_id = str((await resp.json())["id"])
    document = {"name": "faq.md", "content_type": "text/markdown", "text": FAQ}
    resp = await live.client.post(
        f"/knowledge-bases/{base_id}/documents", json=document, headers=live.auth()
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["chunks"] >= 1
    return base_id


async def _call(live: LiveService, base_id: str, retrieval: str) -> str:
    assistant: dict[str, Any] = {
        "provider": "openai",
        "first_message": GREETING,
        "stt_config": {"provider": "offline"},
        "tts_config": {"provider": "offline"},
        "system_prompt": "You answer patients' questions for Riverside Clinic.",
        "knowledge": {"knowledge_base_ids": [base_id], "retrieval": retrieval, "max_chunks": 2},
    }
    resp = await live.client.post(
        "/assistants", json={"name": "Clinic front desk", **assistant}, headers=live.auth()
    )
    assert resp.status == 201, await resp.text()
    assistant_id = (await resp.json())["id"]
    resp = await live.client.post(
        "/calls/outbound",
        json={"destination": QUESTION_PARTY, "assistant_id": assistant_id},
        headers=live.auth(),
    )
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["call_id"])


async def _answered_from_the_faq(live: LiveService, llm: LlmStandIn, retrieval: str) -> None:
    base_id = await _faq_base(live)
    call_id = await _call(live, base_id, retrieval)
    first = await llm.wait_request(timeout=60)
    if retrieval == "every_turn":
        assert first.tool_names == []  # nothing to call: the chunk is in the request itself
        found = first.messages[-1]
        assert found["role"] == "system"
        assert CHUNK_WORDS in found["content"]
        assert "(faq.md)" in found["content"]
        assert "Mill Lane" not in found["content"]  # the chunk asked about, not the others
    else:
        assert first.tool_names == ["search_knowledge"]
        second = await llm.wait_request(2, timeout=30)
        results = [m["content"] for m in second.messages if m["role"] == "tool"]
        assert len(results) == 1
        assert CHUNK_WORDS in results[0]
    await _wait_said(live, call_id, ANSWER)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=20)

    said = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert said[0].startswith("Riverside Clinic")  # the question may cut the greeting short
    assert said[1] == ANSWER
    searches = [e["data"] for e in ended["events"] if e["type"] == "knowledge"]
    assert searches, [e["type"] for e in ended["events"]]
    assert searches[0]["retrieval"] == retrieval
    chunk = searches[0]["chunks"][0]
    assert chunk["knowledge_base_id"] == base_id
    assert chunk["document_name"] == "faq.md"
    assert CHUNK_WORDS in chunk["text"]
    if retrieval == "every_turn":  # the search's own time on the turn's latency record
        timed = [t["retrieval_ms"] for t in ended["latency"] if t.get("retrieval_ms") is not None]
        assert timed, ended["latency"]
        assert 0 <= timed[0] < 1000


async def test_each_turn_is_answered_from_the_faq_on_sqlite(
    lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn
) -> None:
    live = await _live(lab, tmp_path / "knowledge.db", llm, None)
    try:
        await _answered_from_the_faq(live, llm, "every_turn")
    finally:
        await live.client.close()


@pytest.mark.postgres
async def test_the_model_searches_the_faq_on_postgresql(
    lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn, postgres_server: str
) -> None:
    url = await fresh_database(postgres_server)
    live = await _live(lab, tmp_path / "unused.db", llm, url)
    try:
        await _answered_from_the_faq(live, llm, "tool")
    finally:
        await live.client.close()
