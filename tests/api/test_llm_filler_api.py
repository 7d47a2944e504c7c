"""``llm_filler`` over REST: a bad one is a 400 with the error body, a good one is saved, and a
speech-to-speech assistant takes none."""

from __future__ import annotations

import pytest

from api.conftest import Api

pytestmark = pytest.mark.unit


async def test_the_api_answers_a_bad_filler_with_400_and_the_error_body(api: Api) -> None:
    h = api.auth()
    bad = {"name": "Desk", "llm_filler": {"delay_seconds": 30}}
    resp = await api.client.post("/assistants", json=bad, headers=h)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "Bad request"
    assert "llm_filler.delay_seconds must be a number of seconds, 0-10" in body["message"]
    good = {"name": "Desk", "llm_filler": {"delay_seconds": 1.2, "messages": ["Let me see."]}}
    created = await api.client.post("/assistants", json=good, headers=h)
    assert created.status == 201, await created.text()
    assert (await created.json())["llm_filler"] == good["llm_filler"]


async def test_a_speech_to_speech_assistant_takes_no_llm_filler(api: Api) -> None:
    body = {"name": "Rex", "provider": "xai_realtime", "llm_filler": {"delay_seconds": 1}}
    resp = await api.client.post("/assistants", json=body, headers=api.auth())
    assert resp.status == 400  # a contradiction between fields: the configuration's whole
    message = (await resp.json())["message"]
    assert "provider xai_realtime speaks for itself: omit llm_filler" in message
