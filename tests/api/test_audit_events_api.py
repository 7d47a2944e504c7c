"""The audit trail through the real app: each audited action, driven through the REST API,
appears once in ``GET /audit-events`` with its actor (an admin key, or the console session
signed in with it) and its masked address; another organization's admin key sees none of it;
only admin keys read it; filters and cursor paging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.conftest import Api
from api.contract import conforms
from api.test_analysis_templates_api import TEMPLATE
from api.test_calls_api import place
from api.test_console_session_api import sign_in
from api.test_control_api import RecordingLiveCall, control
from api.test_provider_keys_api import KEY, NEW_SECRET
from api.test_tool_templates_api import LOOKUP
from fakes.world import ACME, GLOBEX
from voicedock.api.api_keys import issue_api_key
from voicedock.domain.records import KeyScope

pytestmark = pytest.mark.unit


async def admin_key(api: Api, organization: str = ACME) -> tuple[str, str]:
    """A new admin key of ``organization``: its secret and id."""
    secret, org = await issue_api_key(api.service.store, organization, "admin", KeyScope.ADMIN)
    keys = await api.service.store.list_api_keys(org.id)
    return secret, next(k.id for k in keys if k.name == "admin")


async def events(api: Api, key: str, query: str = "") -> dict[str, Any]:
    resp = await api.client.get(f"/audit-events{query}", headers=api.auth(key))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    conforms(body, "AuditEventList")
    return body


async def created_id(api: Api, path: str, body: dict[str, Any], key: str) -> str:
    resp = await api.client.post(path, json=body, headers=api.auth(key))
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def changed(api: Api, method: str, path: str, key: str, body: Any = None) -> None:
    resp = await api.client.request(method, path, json=body, headers=api.auth(key))
    assert resp.status in (200, 204), await resp.text()


async def test_each_audited_action_appears_once_with_its_actor(api: Api, tmp_path: Path) -> None:
    admin, admin_id = await admin_key(api)
    expected: list[tuple[str, str | None]] = []  # (action, resource id)

    for path, body, kind, update in (
        ("/assistants", {"name": "Desk"}, "assistant", {"name": "Front desk"}),
        ("/tool-templates", LOOKUP, "tool_template", {**LOOKUP, "timeout_seconds": 9}),
        ("/analysis-templates", TEMPLATE, "analysis_template", {"name": "Booking"}),
        ("/provider-keys", KEY, "provider_key", {"api_key": NEW_SECRET}),
        ("/api-keys", {"name": "ci"}, "api_key", {"name": "ci runner"}),
    ):
        record_id = await created_id(api, path, body, admin)
        await changed(api, "PATCH", f"{path}/{record_id}", admin, update)
        await changed(api, "DELETE", f"{path}/{record_id}", admin)
        verbs = {
            "provider_key": ("created", "rotated", "deleted"),
            "api_key": ("created", "renamed", "revoked"),
        }.get(kind, ("created", "updated", "deleted"))
        expected += [(f"{kind}.{verb}", record_id) for verb in verbs]
    hook = await created_id(api, "/webhooks", {"url": "https://93.184.216.34/hook"}, admin)
    await changed(api, "DELETE", f"/webhooks/{hook}", admin)
    expected += [("webhook.created", hook), ("webhook.deleted", hook)]

    # A supervisor's whisper and take over of a live call.
    call_id = await place(api)
    await api.pbx.answer(call_id)
    api.service.engine.records.attach(call_id, RecordingLiveCall())
    whisper = {"type": "inject-context", "content": "Offer 10%", "source": "supervisor"}
    take_over = {"type": "transfer", "destination": "sales", "mode": "warm"}
    note = {"type": "inject-context", "content": "not a whisper"}  # not audited
    for body in (whisper, take_over, note):
        assert (await control(api, call_id, body, admin)).status == 200
    expected += [("call.whisper", call_id), ("call.take_over", call_id)]

    # The call's recording, downloaded once; a player's later range is the same download.
    api.service.settings.recordings.directory = str(tmp_path)
    (tmp_path / "call.wav").write_bytes(b"RIFF" + bytes(100))
    call = await api.service.store.get_call(None, call_id)
    assert call is not None
    call.recording_path = "call.wav"
    async with api.service.store.transaction() as tx:
        await tx.update_call(call)
    url = f"/calls/{call_id}/recording"
    assert (await api.client.get(url, headers=api.auth(admin))).status == 200
    later = {**api.auth(admin), "Range": "bytes=50-"}
    assert (await api.client.get(url, headers=later)).status == 206
    expected.append(("recording.downloaded", call_id))

    usage = await api.client.get("/usage?format=csv", headers=api.auth(admin))
    assert usage.status == 200
    expected.append(("usage.exported", None))

    listed = await events(api, admin)
    got = [(e["action"], e["resource_id"]) for e in listed["audit_events"]]
    assert sorted(got, key=str) == sorted(expected, key=str)  # each exactly once
    assert got[0] == ("usage.exported", None)  # newest first
    for event in listed["audit_events"]:
        assert (event["actor"], event["actor_kind"]) == (admin_id, "api_key")
        assert event["address"] == "127.0.0.0"  # 127.0.0.1, masked
        assert event["console_session"] is None
    by_action = {e["action"]: e for e in listed["audit_events"]}
    assert by_action["call.take_over"]["detail"] == {"mode": "warm"}
    assert by_action["usage.exported"]["detail"]["format"] == "csv"
    assert NEW_SECRET not in str(listed)
    assert KEY["api_key"] not in str(listed)

    # Another organization's admin key sees none of it; a full key may not read the trail.
    other, _ = await admin_key(api, GLOBEX)
    assert (await events(api, other))["audit_events"] == []
    refused = await api.client.get("/audit-events", headers=api.auth())
    assert refused.status == 403


async def test_a_console_session_is_the_actor_of_what_it_does(api: Api) -> None:
    admin, admin_id = await admin_key(api)
    csrf = await sign_in(api, admin)
    resp = await api.client.post("/assistants", json={"name": "Desk"}, headers=csrf)
    assert resp.status == 201, await resp.text()
    assistant_id = (await resp.json())["id"]
    api.client.session.cookie_jar.clear()

    listed = (await events(api, admin))["audit_events"]
    created, signed_in = listed
    assert signed_in["action"] == "console.signed_in"
    assert (created["action"], created["resource_id"]) == ("assistant.created", assistant_id)
    session = signed_in["console_session"]
    assert session is not None
    assert len(session) == 16
    for event in listed:
        assert (event["actor"], event["actor_kind"]) == (admin_id, "console_session")
        assert event["console_session"] == session
    cookie_free = str(listed)
    assert csrf["X-CSRF-Token"] not in cookie_free


async def test_a_refused_change_leaves_no_event(api: Api) -> None:
    admin, _ = await admin_key(api)
    await created_id(api, "/provider-keys", KEY, admin)
    again = await api.client.post("/provider-keys", json=KEY, headers=api.auth(admin))
    assert again.status == 409  # the name is taken: the insert rolled back, and its event
    listed = await events(api, admin)
    assert [e["action"] for e in listed["audit_events"]] == ["provider_key.created"]


async def test_filters_and_cursor_paging(api: Api) -> None:
    admin, admin_id = await admin_key(api)
    ids = [await created_id(api, "/assistants", {"name": f"A{i}"}, admin) for i in range(5)]
    await changed(api, "PATCH", f"/assistants/{ids[0]}", admin, {"name": "Renamed"})

    seen: list[str] = []
    query = "?limit=2&action=assistant.created"
    while True:
        page = await events(api, admin, query)
        seen += [e["resource_id"] for e in page["audit_events"]]
        assert page["pagination"]["total"] == 5
        if page["next_cursor"] is None:
            break
        query = f"?limit=2&action=assistant.created&cursor={page['next_cursor']}"
    assert seen == ids[::-1]  # newest first, no duplicate, no gap

    first = ids[0]
    about = (await events(api, admin, f"?resource_type=assistant&resource_id={first}"))[
        "audit_events"
    ]
    assert [e["action"] for e in about] == ["assistant.updated", "assistant.created"]
    assert (await events(api, admin, f"?actor={admin_id}"))["pagination"]["total"] == 6
    assert (await events(api, admin, "?actor=someone-else"))["audit_events"] == []
    assert (await events(api, admin, "?created_after=2999-01-01T00:00:00Z"))["audit_events"] == []
    before = await events(api, admin, "?created_before=2999-01-01T00:00:00Z")
    assert before["pagination"]["total"] == 6
    for bad in ("?created_after=yesterday", "?cursor=nope", "?what=1", "?limit=0"):
        resp = await api.client.get(f"/audit-events{bad}", headers=api.auth(admin))
        assert resp.status == 400, bad
