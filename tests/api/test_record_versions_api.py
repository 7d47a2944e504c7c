"""Versions of squads and tool templates over REST: every change (create, PATCH, a rollback) is
a version, listed newest first with the key that made it and the settings it changed; a
version shows the record as it was (secrets masked); a rollback makes an earlier version's
settings the record's again as its next version, and the calls after it run them; refusals;
another organization sees none of it; the versions go with the record."""

from __future__ import annotations

from typing import Any

import pytest

from api.conftest import Api
from api.contract import conforms
from api.test_calls_api import DESTINATION, post_outbound
from api.test_squads_api import BILLING, SQUAD
from api.test_tool_templates_api import LOOKUP
from fakes.world import ACME, org_id
from voicedock.domain.record_versions import VersionedKind
from voicedock.store.protocols.audit import AuditQuery

pytestmark = pytest.mark.unit


async def _json(resp: Any, status: int = 200) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json()


async def _key_id(api: Api) -> str:
    return (await api.service.store.list_api_keys(org_id(ACME)))[0].id


async def _squad_call_members(api: Api, squad_id: str) -> tuple[int, list[str]]:
    """A call placed with the squad: the squad version it records (GET /calls/{id}), the
    members it runs."""
    body = await _json(await post_outbound(api, {"destination": DESTINATION, "squad_id": squad_id}))
    call = await api.service.store.get_call(org_id(ACME), body["call_id"])
    assert call is not None
    assert call.squad is not None
    shown = await _json(await api.client.get(f"/calls/{call.id}", headers=api.auth()))
    return shown["squad_version"], [m.name for m in call.squad.members]


async def test_a_squads_changes_are_versions_and_a_rollback_restores_its_members(
    api: Api,
) -> None:
    h = api.auth()
    created = await _json(await api.client.post("/squads", json=SQUAD, headers=h), 201)
    conforms(created, "Squad")
    assert created["version"] == 1
    sid = created["id"]
    alone = {"name": "Billing", "members": [BILLING | {"destinations": []}]}
    patched = await _json(await api.client.patch(f"/squads/{sid}", json=alone, headers=h))
    assert patched["version"] == 2
    same = await _json(
        await api.client.patch(f"/squads/{sid}", json={"name": "Billing"}, headers=h)
    )
    assert same == patched  # nothing changed: no version
    assert await _squad_call_members(api, sid) == (2, ["billing"])

    listed = await _json(await api.client.get(f"/squads/{sid}/versions", headers=h))
    conforms(listed, "VersionList")
    versions = listed["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["changed"] == ["name", "members"]
    assert versions[1]["changed"] == ["name", "members"]
    assert {v["created_by"] for v in versions} == {await _key_id(api)}
    assert versions[0]["published_at"] == versions[0]["created_at"]

    first = await _json(await api.client.get(f"/squads/{sid}/versions/1", headers=h))
    conforms(first, "SquadVersionDetail")
    assert first["squad"]["version"] == 1
    assert [m["name"] for m in first["squad"]["members"]] == ["receptionist", "billing"]
    second = await _json(await api.client.get(f"/squads/{sid}/versions/2", headers=h))
    name = {c["setting"]: c for c in second["changes"]}["name"]
    assert (name["before"], name["after"]) == ("Front desk", "Billing")

    rolled = await _json(
        await api.client.post(f"/squads/{sid}/rollback", json={"version": 1}, headers=h)
    )
    conforms(rolled, "Squad")
    assert (rolled["version"], rolled["name"]) == (3, "Front desk")
    assert await _json(await api.client.get(f"/squads/{sid}", headers=h)) == rolled
    assert await _squad_call_members(api, sid) == (3, ["receptionist", "billing"])
    newest = (await _json(await api.client.get(f"/squads/{sid}/versions", headers=h)))["versions"][
        0
    ]
    assert (newest["version"], newest["changed"]) == (3, ["name", "members"])
    query = AuditQuery(org_id(ACME), action="squad.updated", resource_id=sid)
    assert (await api.service.store.list_audit_events(query)).total == 2  # a PATCH, a rollback


async def test_a_squad_members_secret_stays_masked_in_its_versions(api: Api) -> None:
    h = api.auth()
    llm = {"provider": "openai", "model": "gpt-4o-mini", "api_key": "sk-secret-1234567890"}
    keyed = BILLING | {"assistant": {**BILLING["assistant"], "llm_config": llm}}  # type: ignore[dict-item]
    body = {"name": "Keyed", "members": [keyed | {"destinations": []}]}
    sid = (await _json(await api.client.post("/squads", json=body, headers=h), 201))["id"]
    first = await api.client.get(f"/squads/{sid}/versions/1", headers=h)
    text = await first.text()
    assert first.status == 200, text
    assert "sk-secret-1234567890" not in text


async def _tool_call(api: Api, assistant_id: str) -> Any:
    placed = await _json(
        await api.client.post(
            "/calls/outbound",
            json={"destination": DESTINATION, "assistant_id": assistant_id},
            headers=api.auth(),
        )
    )
    call = await api.service.store.get_call(None, placed["call_id"])
    assert call is not None
    return call.assistant_config.tools


async def test_a_tool_templates_changes_are_versions_and_its_assistants_run_the_restored_tool(
    api: Api,
) -> None:
    h = api.auth()
    created = await _json(await api.client.post("/tool-templates", json=LOOKUP, headers=h), 201)
    conforms(created, "ToolTemplate")
    assert created["version"] == 1
    tid = created["id"]
    assistant = {"name": "Orders", "tools": [{"template_id": tid}]}
    aid = (await _json(await api.client.post("/assistants", json=assistant, headers=h), 201))["id"]
    slower = {**LOOKUP, "timeout_seconds": 9}
    patched = await _json(await api.client.patch(f"/tool-templates/{tid}", json=slower, headers=h))
    assert patched["version"] == 2
    same = await _json(await api.client.patch(f"/tool-templates/{tid}", json=slower, headers=h))
    assert same == patched
    assert await _tool_call(api, aid) == [slower]

    listed = await _json(await api.client.get(f"/tool-templates/{tid}/versions", headers=h))
    conforms(listed, "VersionList")
    assert [v["version"] for v in listed["versions"]] == [2, 1]
    assert listed["versions"][0]["changed"] == ["timeout_seconds"]
    assert set(listed["versions"][1]["changed"]) >= {"type", "name", "timeout_seconds"}
    assert {v["created_by"] for v in listed["versions"]} == {await _key_id(api)}
    second = await _json(await api.client.get(f"/tool-templates/{tid}/versions/2", headers=h))
    conforms(second, "ToolTemplateVersionDetail")
    assert second["changes"] == [{"setting": "timeout_seconds", "before": 5, "after": 9}]
    assert second["tool_template"]["timeout_seconds"] == 9

    rolled = await _json(
        await api.client.post(f"/tool-templates/{tid}/rollback", json={"version": 1}, headers=h)
    )
    conforms(rolled, "ToolTemplate")
    assert (rolled["version"], rolled["timeout_seconds"]) == (3, 5)
    assert await _tool_call(api, aid) == [LOOKUP]
    query = AuditQuery(org_id(ACME), action="tool_template.updated", resource_id=tid)
    assert (await api.service.store.list_audit_events(query)).total == 2


@pytest.mark.parametrize("path", ["/squads", "/tool-templates"])
async def test_refusals_and_another_organization(api: Api, path: str) -> None:
    h = api.auth()
    body = SQUAD if path == "/squads" else LOOKUP
    rid = (await _json(await api.client.post(path, json=body, headers=h), 201))["id"]
    title = "Squad version not found" if path == "/squads" else "Tool template version not found"
    for version in ("2", "0", "-1", "x", "99999999999"):
        missing = await api.client.get(f"{path}/{rid}/versions/{version}", headers=h)
        assert (await _json(missing, 404))["error"] == title
    rollback = f"{path}/{rid}/rollback"
    unknown = await api.client.post(rollback, json={"version": 7}, headers=h)
    assert (await _json(unknown, 404))["error"] == title
    for bad in ({}, {"version": 0}, {"version": "1"}, {"version": 1, "x": 1}, []):
        assert (await api.client.post(rollback, json=bad, headers=h)).status == 400
    theirs = api.auth(api.globex_key)
    for resp in (
        await api.client.get(f"{path}/{rid}/versions", headers=theirs),
        await api.client.get(f"{path}/{rid}/versions/1", headers=theirs),
        await api.client.post(rollback, json={"version": 1}, headers=theirs),
    ):
        assert (await _json(resp, 404))["error"].endswith(" not found")
        assert "version" not in (await resp.json())["error"]


@pytest.mark.every_backend  # its cases query the store each its own way
@pytest.mark.parametrize(
    ("path", "kind"),
    [("/squads", VersionedKind.SQUAD), ("/tool-templates", VersionedKind.TOOL_TEMPLATE)],
)
async def test_deleting_the_record_deletes_its_versions(
    api: Api, path: str, kind: VersionedKind
) -> None:
    h = api.auth()
    body = SQUAD if path == "/squads" else LOOKUP
    rid = (await _json(await api.client.post(path, json=body, headers=h), 201))["id"]
    store = api.service.store
    assert len(await store.list_record_versions(kind, org_id(ACME), rid)) == 1
    assert (await api.client.delete(f"{path}/{rid}", headers=h)).status == 204
    assert await store.list_record_versions(kind, org_id(ACME), rid) == []
    assert (await api.client.get(f"{path}/{rid}/versions", headers=h)).status == 404
