"""Assistant versions over REST: every change (create, PATCH, a rollback) is a version, listed
newest first with the key that made it and the settings it changed; a version shows the
assistant as it was and what it changed (provider keys masked); a call records the version it
ran; a rollback makes an earlier version's settings the assistant's as its next version (the
calls after it run them); refusals; another organization sees none of it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.conftest import Api
from api.contract import conforms
from fakes.world import ACME, ACME_NUMBERS, DESTINATION, number_id, org_id
from voicedock.calls.assistants.request import inbound_assistant
from voicedock.config import ByokSettings, SpeechSettings
from voicedock.domain.traffic_split import TrafficShare, version_for
from voicedock.store.protocols.audit import AuditQuery

pytestmark = pytest.mark.unit


async def _json(resp: Any, status: int = 200) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json()


async def _call_version(
    api: Api, assistant_id: str, destination: str = DESTINATION
) -> tuple[int | None, str | None]:
    """A call placed with the saved assistant: the version it recorded, its system prompt."""
    placed = await _json(
        await api.client.post(
            "/calls/outbound",
            json={"destination": destination, "assistant_id": assistant_id},
            headers=api.auth(),
        )
    )
    call_id = placed["call_id"]
    call = await _json(await api.client.get(f"/calls/{call_id}", headers=api.auth()))
    conforms(call, "Call")
    stored = await api.service.store.get_call(org_id(ACME), call_id)
    assert stored is not None
    prompt = stored.assistant_config.system_prompt
    ended = await api.client.post(
        f"/calls/{call_id}/control", json={"type": "end-call"}, headers=api.auth()
    )
    await _json(ended)
    async with asyncio.timeout(10):  # its number free again for the next call
        while (now := await api.service.store.get_call(None, call_id)) and now.status != "ended":
            await asyncio.sleep(0.02)
    return call["assistant_version"], prompt if isinstance(prompt, str) else None


async def test_changes_are_versions_calls_record_theirs_and_a_rollback_restores(
    api: Api,
) -> None:
    h = api.auth()
    created = await _json(
        await api.client.post(
            "/assistants",
            json={"name": "Front desk", "system_prompt": "Be brief.", "first_message": "Hi."},
            headers=h,
        ),
        201,
    )
    conforms(created, "Assistant")
    assert created["version"] == 1
    aid = created["id"]
    assert await _call_version(api, aid) == (1, "Be brief.")

    patched = await _json(
        await api.client.patch(f"/assistants/{aid}", json={"system_prompt": "Be warm."}, headers=h)
    )
    assert patched["version"] == 2
    third = await _json(
        await api.client.patch(
            f"/assistants/{aid}",
            json={"name": "Reception", "system_prompt": "Be formal.", "first_message": None},
            headers=h,
        )
    )
    assert third["version"] == 3
    same = await _json(
        await api.client.patch(
            f"/assistants/{aid}", json={"system_prompt": "Be formal."}, headers=h
        )
    )
    assert same == third  # nothing changed: no version
    assert await _call_version(api, aid) == (3, "Be formal.")

    listed = await _json(await api.client.get(f"/assistants/{aid}/versions", headers=h))
    conforms(listed, "AssistantVersionList")
    versions = listed["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[0]["changed"] == ["name", "first_message", "system_prompt"]
    assert versions[1]["changed"] == ["system_prompt"]
    assert "system_prompt" in versions[2]["changed"]
    assert "name" in versions[2]["changed"]
    key_id = (await api.service.store.list_api_keys(org_id(ACME)))[0].id
    assert {v["created_by"] for v in versions} == {key_id}

    second = await _json(await api.client.get(f"/assistants/{aid}/versions/2", headers=h))
    conforms(second, "AssistantVersionDetail")
    assert second["changes"] == [
        {"setting": "system_prompt", "before": "Be brief.", "after": "Be warm."}
    ]
    assert second["assistant"]["system_prompt"] == "Be warm."
    assert second["assistant"]["version"] == 2
    assert second["assistant"]["created_at"] == created["created_at"]
    last = await _json(await api.client.get(f"/assistants/{aid}/versions/3", headers=h))
    assert {c["setting"]: c["after"] for c in last["changes"]}["first_message"] is None

    rolled = await _json(
        await api.client.post(f"/assistants/{aid}/rollback", json={"version": 1}, headers=h)
    )
    conforms(rolled, "Assistant")
    assert (rolled["version"], rolled["name"], rolled["system_prompt"]) == (
        4,
        "Front desk",
        "Be brief.",
    )
    assert rolled["first_message"] == "Hi."
    got = await _json(await api.client.get(f"/assistants/{aid}", headers=h))
    assert got == rolled
    assert await _call_version(api, aid) == (4, "Be brief.")
    newest = (await _json(await api.client.get(f"/assistants/{aid}/versions", headers=h)))[
        "versions"
    ][0]
    assert newest["version"] == 4
    assert set(newest["changed"]) == {"name", "first_message", "system_prompt"}
    query = AuditQuery(org_id(ACME), action="assistant.updated", resource_id=aid)
    assert (await api.service.store.list_audit_events(query)).total == 3  # 2 PATCHes, a rollback


async def test_provider_keys_stay_masked_in_versions(api: Api) -> None:
    h = api.auth()
    llm = {"provider": "openai", "model": "gpt-4o-mini", "api_key": "sk-secret-1234567890"}
    created = await _json(
        await api.client.post("/assistants", json={"name": "Keyed", "llm_config": llm}, headers=h),
        201,
    )
    aid = created["id"]
    await _json(
        await api.client.patch(
            f"/assistants/{aid}",
            json={"llm_config": {**llm, "api_key": "sk-other-0987654321"}},
            headers=h,
        )
    )
    text = await (await api.client.get(f"/assistants/{aid}/versions/2", headers=h)).text()
    assert "sk-secret" not in text
    assert "sk-other" not in text
    detail = await _json(await api.client.get(f"/assistants/{aid}/versions/2", headers=h))
    assert detail["changed"] == ["llm_config"]  # the key changed, shown masked
    assert detail["assistant"]["llm_config"]["api_key"] != llm["api_key"]


async def test_versions_refusals_and_other_organizations(api: Api) -> None:
    h = api.auth()
    aid = (
        await _json(await api.client.post("/assistants", json={"name": "Desk"}, headers=h), 201)
    )["id"]
    for version in ("2", "0", "x", "99999999999999999999"):
        resp = await api.client.get(f"/assistants/{aid}/versions/{version}", headers=h)
        body = await _json(resp, 404)
        assert body["error"] == "Assistant version not found", version
    resp = await api.client.post(f"/assistants/{aid}/rollback", json={"version": 7}, headers=h)
    assert (await _json(resp, 404))["error"] == "Assistant version not found"
    for body in ({}, {"version": 0}, {"version": "1"}, {"version": 1, "extra": True}):
        resp = await api.client.post(f"/assistants/{aid}/rollback", json=body, headers=h)
        await _json(resp, 400)
    theirs = api.auth(api.globex_key)
    assert (await api.client.get(f"/assistants/{aid}/versions", headers=theirs)).status == 404
    assert (await api.client.get(f"/assistants/{aid}/versions/1", headers=theirs)).status == 404
    resp = await api.client.post(f"/assistants/{aid}/rollback", json={"version": 1}, headers=theirs)
    assert resp.status == 404
    assert await api.client.delete(f"/assistants/{aid}", headers=h)
    assert await api.service.store.list_assistant_versions(org_id(ACME), aid) == []


async def test_a_split_gives_each_callee_one_version_and_usage_counts_each(api: Api) -> None:
    """A 50/50 split of two versions over 20 calls to 10 callees: both versions run, each
    callee's two calls the same one, each call the settings of its version; usage by version
    counts them; the split ended, every call runs the current version."""
    h = api.auth()
    aid = (
        await _json(
            await api.client.post(
                "/assistants", json={"name": "Desk", "system_prompt": "Version A."}, headers=h
            ),
            201,
        )
    )["id"]
    await _json(
        await api.client.patch(
            f"/assistants/{aid}", json={"system_prompt": "Version B."}, headers=h
        )
    )
    split = {"versions": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]}
    shown = await _json(
        await api.client.put(f"/assistants/{aid}/traffic-split", json=split, headers=h)
    )
    conforms(shown, "Assistant")
    assert shown["traffic_split"] == split["versions"]
    assert shown["version"] == 2  # a split is no version
    callees = [f"+316123456{n:02d}" for n in range(10)]
    ran: dict[str, set[int | None]] = {callee: set() for callee in callees}
    for _ in range(2):
        for callee in callees:
            version, prompt = await _call_version(api, aid, callee)
            assert prompt == {1: "Version A.", 2: "Version B."}[version or 0]
            ran[callee].add(version)
    assert all(len(versions) == 1 for versions in ran.values()), ran
    assert {v for versions in ran.values() for v in versions} == {1, 2}

    usage = await _json(await api.client.get("/usage?group_by=assistant_version", headers=h))
    conforms(usage, "UsageReport")
    counted = {g["key"]: g["calls"] for g in usage["groups"]}
    assert set(counted) == {f"{aid}@1", f"{aid}@2"}
    assert sum(counted.values()) == 20

    ended = await _json(await api.client.delete(f"/assistants/{aid}/traffic-split", headers=h))
    assert ended["traffic_split"] is None
    for callee in callees[:4]:
        assert await _call_version(api, aid, callee) == (2, "Version B.")


async def test_a_split_is_refused_unless_it_names_the_assistant_s_versions_once(api: Api) -> None:
    h = api.auth()
    aid = (
        await _json(await api.client.post("/assistants", json={"name": "Desk"}, headers=h), 201)
    )["id"]
    path = f"/assistants/{aid}/traffic-split"
    one, three = {"version": 1, "weight": 50}, {"version": 3, "weight": 50}
    resp = await api.client.put(path, json={"versions": [one, three]}, headers=h)
    assert (await _json(resp, 422))["error"] == "Unknown assistant version"
    resp = await api.client.put(path, json={"versions": [one, one]}, headers=h)
    assert (await _json(resp, 400))["error"] == "Duplicate version"
    for versions in ([one], [one, {"version": 1, "weight": 0}], [{**one, "share": 1}, one]):
        await _json(await api.client.put(path, json={"versions": versions}, headers=h), 400)
    theirs = api.auth(api.globex_key)
    assert (await api.client.delete(path, headers=theirs)).status == 404
    got = await _json(await api.client.get(f"/assistants/{aid}", headers=h))
    assert got["traffic_split"] is None


async def test_a_number_splits_its_inbound_calls_between_its_assistant_s_versions(
    api: Api,
) -> None:
    """A split set on a number (PATCH /phone-numbers/{id}): the inbound calls to it are
    answered by the versions it names, each caller always the same one, whatever the
    assistant's own split; another assistant for the number ends it; refusals."""
    h = api.auth()
    aid = (
        await _json(
            await api.client.post(
                "/assistants", json={"name": "Desk", "first_message": "One."}, headers=h
            ),
            201,
        )
    )["id"]
    for message in ("Two.", "Three."):
        patched = await api.client.patch(
            f"/assistants/{aid}", json={"first_message": message}, headers=h
        )
        await _json(patched)
    own = {"versions": [{"version": 1, "weight": 1}, {"version": 3, "weight": 1}]}
    await _json(await api.client.put(f"/assistants/{aid}/traffic-split", json=own, headers=h))
    path = f"/phone-numbers/{number_id(ACME_NUMBERS[1])}"
    split = [{"version": 2, "weight": 50}, {"version": 3, "weight": 50}]
    shown = await _json(
        await api.client.patch(path, json={"assistant_id": aid, "traffic_split": split}, headers=h)
    )
    conforms(shown, "PhoneNumber")
    assert shown["traffic_split"] == split

    number = await api.service.store.get_phone_number(org_id(ACME), shown["id"])
    assert number is not None
    shares = [TrafficShare(version=2, weight=50), TrafficShare(version=3, weight=50)]
    answered: set[int | None] = set()
    for caller in [f"+4930123456{n:02d}" for n in range(10)]:
        chosen = await inbound_assistant(
            api.service.store, SpeechSettings(), ByokSettings(), None, number,
            call_id="call-1", caller=caller,
        )  # fmt: skip
        assert chosen is not None
        assert chosen.version == version_for(shares, aid, caller)
        assert chosen.config.first_message == {2: "Two.", 3: "Three."}[chosen.version or 0]
        answered.add(chosen.version)
    assert answered == {2, 3}

    for body, status, error in (
        ({"traffic_split": [split[0], split[0]]}, 400, "Duplicate version"),
        (
            {"traffic_split": [split[0], {"version": 7, "weight": 1}]},
            422,
            "Unknown assistant version",
        ),
        ({"traffic_split": [split[0]]}, 400, None),
        ({"assistant_id": None, "traffic_split": split}, 400, None),
    ):
        resp = await api.client.patch(path, json=body, headers=h)
        refused = await _json(resp, status)
        assert error is None or refused["error"] == error, refused
    # Another assistant for the number: the split (of the other's versions) ends with it.
    other = (
        await _json(await api.client.post("/assistants", json={"name": "Night"}, headers=h), 201)
    )["id"]
    moved = await _json(await api.client.patch(path, json={"assistant_id": other}, headers=h))
    assert moved["traffic_split"] is None
