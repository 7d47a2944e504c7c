"""``/agents``: the seeds' name for assistants, a deprecated alias of ``/assistants`` on the one
resource layer: the same records and bodies, each answer flagged as deprecated, and every
operation marked ``deprecated`` in the document."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from api.conftest import Api
from api.contract import conforms, operation
from fakes.world import ACME, DESTINATION
from voicedock.api.api_keys import issue_api_key
from voicedock.domain.records import KeyScope

pytestmark = pytest.mark.unit


def _flagged(headers: Mapping[str, str], successor: str) -> None:
    assert headers.get("Deprecation") == "true"
    warning = headers.get("Warning", "")
    assert warning.startswith("299 "), warning
    assert f"-> {successor}" in warning, warning
    assert 'rel="deprecation"' in headers.get("Link", "")


async def test_agents_are_the_assistants_under_their_old_name(api: Api) -> None:
    h = api.auth()
    created = await api.client.post(
        "/agents", json={"name": "Front desk", "first_message": "Hello."}, headers=h
    )
    assert created.status == 201, await created.text()
    _flagged(created.headers, "/assistants")
    agent = await created.json()
    conforms(agent, "Assistant")
    agent_id = agent["id"]

    # One record: what /agents made, /assistants reads, and the other way round.
    as_assistant = await api.client.get(f"/assistants/{agent_id}", headers=h)
    assert as_assistant.status == 200
    assert "Deprecation" not in as_assistant.headers
    assert await as_assistant.json() == agent
    listed = await api.client.get("/agents", headers=h)
    _flagged(listed.headers, "/assistants")
    assert agent_id in {a["id"] for a in (await listed.json())["assistants"]}

    patched = await api.client.patch(
        f"/agents/{agent_id}", json={"first_message": "Good morning."}, headers=h
    )
    assert patched.status == 200
    _flagged(patched.headers, "/assistants/{id}")
    read = await api.client.get(f"/agents/{agent_id}", headers=h)
    assert (await read.json())["first_message"] == "Good morning."

    # A call names it by its old field name too; its record answers agent_id.
    placed = await api.client.post(
        "/calls/outbound", json={"destination": DESTINATION, "agent_id": agent_id}, headers=h
    )
    assert placed.status == 200, await placed.text()
    call = await api.client.get(f"/calls/{(await placed.json())['call_id']}", headers=h)
    assert (await call.json())["agent_id"] == agent_id

    deleted = await api.client.delete(f"/agents/{agent_id}", headers=h)
    assert deleted.status == 204
    _flagged(deleted.headers, "/assistants/{id}")
    gone = await api.client.get(f"/assistants/{agent_id}", headers=h)
    assert gone.status == 404


async def test_agents_keep_the_assistants_rules(api: Api) -> None:
    h = api.auth()
    bad = await api.client.post("/agents", json={"first_message": "no name"}, headers=h)
    assert bad.status == 400
    assert (await bad.json())["message"] == "name is required"
    mine = await api.client.post("/agents", json={"name": "Mine"}, headers=h)
    agent_id = (await mine.json())["id"]
    other = await api.client.get(f"/agents/{agent_id}", headers=api.auth(api.globex_key))
    assert other.status == 404
    assert (await other.json())["error"] == "Assistant not found"
    reader, _ = await issue_api_key(api.service.store, ACME, "reader", KeyScope.READ_ONLY)
    read_only = await api.client.delete(f"/agents/{agent_id}", headers=api.auth(reader))
    assert read_only.status == 403


def test_every_agents_operation_is_a_deprecated_assistants_one() -> None:
    for alias, path in (("/agents", "/assistants"), ("/agents/{id}", "/assistants/{id}")):
        for method in ("get", "post", "patch", "delete"):
            try:
                original = operation(path, method)
            except KeyError:
                continue
            op = operation(alias, method)
            assert op["deprecated"] is True
            assert op.get("requestBody") == original.get("requestBody")
            assert set(op["responses"]) == set(original["responses"])
            ok = next(s for s in op["responses"] if s.startswith("2"))
            assert "Deprecation" in op["responses"][ok]["headers"]
            assert "deprecated" not in original
