"""An assistant's provider sections are read at the edge, by the request's model: a section
naming a key its provider does not take, a value out of its bounds or a provider this node
has no engine for is a 400 naming its place, on every route that takes a configuration
(``POST``/``PATCH /assistants``, ``POST /calls/outbound`` with a transient assistant or an
override, ``POST /squads`` with a member's own assistant), and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from api.conftest import Api
from api.test_calls_api import DESTINATION, post_outbound
from fakes.world import SUPPORT_ID

pytestmark = pytest.mark.unit

BAD = "Bad request"
ASSISTANT = {"name": "Front desk", "first_message": "Hello."}

UNRESOLVABLE = "Unresolvable configuration"  # what this node has: its engines
# (section, the refusal's words, as /assistants says them: the check of what it means)
SECTIONS: list[tuple[dict[str, Any], str]] = [
    ({"llm_config": {"provider": "AAA"}}, "llm_config.provider 'AAA' is not one of "),
    (
        {"stt_config": {"provider": "deepgram", "beam_size": 2}},
        "stt_config.beam_size is not a setting of the deepgram STT",
    ),
    (
        {"tts_config": {"provider": "piper", "length_scale": 9}},
        "tts_config.length_scale must be between 0.5 and 2.0",
    ),
    (
        {"stt_config": {"cache_dir": "/tmp"}},
        "stt_config.cache_dir is set by the operator, not per assistant",
    ),
    (
        {"llm_config": {"provider": "ollama", "temperature": 3}},
        "llm_config.temperature must be between 0 and 2",
    ),
]
# (section, where its type refuses it: a call's or a squad's configuration names its place
# in msgspec's words; /assistants in the check's, under the title of the node's engines)
TYPED: list[tuple[dict[str, Any], str]] = [
    (
        {"llm_config": {"fallback_plan": [{"provider": "ollama", "temperature": 3}]}},
        "llm_config.fallback_plan[0].temperature",
    ),
    (
        {
            "provider": "xai_realtime",
            "llm_config": {"say_voice": {"provider": "piper", "length_scale": 9}},
        },
        "llm_config.say_voice.length_scale",
    ),
]


def refused(body: dict[str, Any], words: str) -> bool:
    """The refusal's title, and its words (ending in a space: how they begin)."""
    message = str(body["message"])
    if words.endswith(" "):  # an engine this node does not have: the registry's list follows
        return body["error"] == UNRESOLVABLE and message.startswith(words)
    return body["error"] == BAD and message == words


async def placed(api: Api, section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The 400 bodies of a call placed with ``section`` in a transient assistant and in an
    override, by the field it was sent in."""
    bodies = {}
    for field, extra in (("assistant", {}), ("assistant_override", {"assistant_id": SUPPORT_ID})):
        resp = await post_outbound(api, {"destination": DESTINATION, field: section, **extra})
        assert resp.status == 400
        bodies[field] = await resp.json()
    return bodies


async def squad_refusal(api: Api, section: dict[str, Any]) -> dict[str, Any]:
    """The 400 body of a squad whose member's own assistant has ``section``; none stored."""
    member = {"name": "billing", "assistant": section}
    squad = {"name": "Front desk", "members": [member]}
    resp = await api.client.post("/squads", json=squad, headers=api.auth())
    assert resp.status == 400
    assert (await (await api.client.get("/squads", headers=api.auth())).json())["squads"] == []
    body: dict[str, Any] = await resp.json()
    return body


@pytest.mark.parametrize(("section", "words"), SECTIONS)
async def test_a_bad_section_is_refused_where_it_was_sent(
    api: Api, section: dict[str, Any], words: str
) -> None:
    h = api.auth()
    created = await api.client.post("/assistants", json={**ASSISTANT, **section}, headers=h)
    assert created.status == 400
    body = await created.json()
    assert refused(body, words), body

    patched = await api.client.patch(f"/assistants/{SUPPORT_ID}", json=section, headers=h)
    assert patched.status == 400
    body = await patched.json()
    assert refused(body, words), body

    for body in (await placed(api, section)).values():
        assert refused(body, words), body  # named in the configuration, as /assistants does

    body = await squad_refusal(api, section)
    assert refused(body, f"members[0].assistant.{words}"), body

    listed = await (await api.client.get("/assistants", headers=h)).json()
    assert ASSISTANT["name"] not in [a["name"] for a in listed["assistants"]]
    assert (await (await api.client.get("/calls", headers=h)).json())["calls"] == []


@pytest.mark.parametrize(("section", "place"), TYPED)
async def test_a_section_its_type_refuses_is_refused_naming_its_place(
    api: Api, section: dict[str, Any], place: str
) -> None:
    h = api.auth()
    created = await api.client.post("/assistants", json={**ASSISTANT, **section}, headers=h)
    assert created.status == 400
    assert (await created.json())["message"].startswith(f"{place} must be between"), place
    for field, body in (await placed(api, section)).items():
        assert body["error"] == BAD
        assert body["message"].startswith(f"{field}.{place}: expected `float` <= "), body
    body = await squad_refusal(api, section)
    assert body["error"] == BAD
    assert body["message"].startswith(f"members[0].assistant.{place}: expected `float` <= "), body
    assert (await (await api.client.get("/calls", headers=h)).json())["calls"] == []


async def test_a_key_one_provider_takes_as_its_own_passes_the_edge_on_every_route(
    api: Api,
) -> None:
    """ElevenLabs' ``sample_rate`` (its output format) is an organization's setting for that
    provider alone (a host setting of the offline engines): a squad member's assistant, a
    transient call's and a saved one take it, as the document says."""
    h = api.auth()
    tts = {"provider": "elevenlabs", "voice_id": "21m00Tcm4TlvDq8ikWAM", "sample_rate": 16000}
    section = {"tts_config": tts}
    created = await api.client.post("/assistants", json={**ASSISTANT, **section}, headers=h)
    assert created.status == 201, await created.text()
    assert (await created.json())["tts_config"]["sample_rate"] == 16000
    member = {"name": "billing", "assistant": {**ASSISTANT, **section}}
    squad = await api.client.post(
        "/squads", json={"name": "Front desk", "members": [member]}, headers=h
    )
    assert squad.status == 201, await squad.text()
    stored = await (await api.client.get(f"/squads/{(await squad.json())['id']}", headers=h)).json()
    assert stored["members"][0]["assistant"]["tts_config"]["sample_rate"] == 16000
    # On a piper voice the same key is the operator's: refused by name.
    piper = {"tts_config": {"provider": "piper", "sample_rate": 16000}}
    member = {"name": "billing", "assistant": piper}
    resp = await api.client.post("/squads", json={"name": "Sales", "members": [member]}, headers=h)
    assert resp.status == 400
    refused_body = await resp.json()
    assert refused_body["message"] == (
        "members[0].assistant.tts_config.sample_rate is set by the operator, not per assistant"
    ), refused_body
