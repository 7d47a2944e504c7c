"""Tool templates over REST: stored per organization, referenced by an assistant's tools,
expanded into the call's own configuration when a call is placed, and kept while an assistant
references them."""

from __future__ import annotations

import pytest

from api.conftest import Api
from api.contract import conforms, is_valid, statuses
from fakes.world import DESTINATION

pytestmark = pytest.mark.unit

LOOKUP = {
    "type": "webhook",
    "name": "lookup_order",
    "description": "Find an order by its number.",
    "parameters": {"type": "object", "properties": {"number": {"type": "string"}}},
    "timeout_seconds": 5,
}


async def test_tool_template_crud_per_organization(api: Api) -> None:
    h = api.auth()
    resp = await api.client.post("/tool-templates", json=LOOKUP, headers=h)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert {k: created[k] for k in LOOKUP} == LOOKUP
    tid = created["id"]
    listed = await (await api.client.get("/tool-templates", headers=h)).json()
    assert [t["id"] for t in listed["tool_templates"]] == [tid]
    other = await api.client.get(f"/tool-templates/{tid}", headers=api.auth(api.globex_key))
    assert other.status == 404
    patched = await api.client.patch(
        f"/tool-templates/{tid}", json={**LOOKUP, "timeout_seconds": 9}, headers=h
    )
    assert (await patched.json())["timeout_seconds"] == 9
    bad = await api.client.post("/tool-templates", json={"type": "hold"}, headers=h)
    assert bad.status == 400
    assert (await api.client.delete(f"/tool-templates/{tid}", headers=h)).status == 204
    assert (await api.client.get(f"/tool-templates/{tid}", headers=h)).status == 404


async def test_a_call_carries_the_templates_tool(api: Api) -> None:
    h = api.auth()
    tid = (await (await api.client.post("/tool-templates", json=LOOKUP, headers=h)).json())["id"]
    assistant = {"name": "Orders", "tools": [{"template_id": tid}, {"type": "end_call"}]}
    resp = await api.client.post("/assistants", json=assistant, headers=h)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["tools"] == [{"template_id": tid}, {"type": "end_call"}]
    aid = (await resp.json())["id"]
    placed = await api.client.post(
        "/calls/outbound", json={"destination": DESTINATION, "assistant_id": aid}, headers=h
    )
    assert placed.status == 200, await placed.text()
    call = await api.service.store.get_call(None, (await placed.json())["call_id"])
    assert call is not None
    assert call.assistant_config.tools == [LOOKUP, {"type": "end_call"}]


async def test_a_referenced_template_is_kept_until_no_assistant_names_it(api: Api) -> None:
    """Deleting a template an assistant names is a 409 naming the assistant (its calls would
    be refused when placed); the assistant's calls still carry the tool; once no assistant
    names it, it is deleted."""
    h = api.auth()
    tid = (await (await api.client.post("/tool-templates", json=LOOKUP, headers=h)).json())["id"]
    other = (await (await api.client.post("/tool-templates", json=TRANSFER, headers=h)).json())[
        "id"
    ]
    tools = [{"type": "end_call"}, {"template_id": tid}]
    resp = await api.client.post("/assistants", json={"name": "Orders", "tools": tools}, headers=h)
    assert resp.status == 201, await resp.text()
    aid = (await resp.json())["id"]
    # Another organization cannot name this organization's template: to it, none exists.
    theirs = {"name": "Theirs", "tools": [{"type": "end_call"}, {"template_id": other}]}
    unknown = await api.client.post("/assistants", json=theirs, headers=api.auth(api.globex_key))
    assert unknown.status == 422
    assert await unknown.json() == {
        "error": "Unknown tool template",
        "message": "tools[1].template_id: no tool template with this id",
    }

    refused = await api.client.delete(f"/tool-templates/{tid}", headers=h)
    assert refused.status == 409, await refused.text()
    body = await refused.json()
    assert body["error"] == "Conflict"
    assert body["message"] == (
        "the tool template is in the tools of assistant(s): Orders; "
        "remove it from their tools first"
    )
    assert 409 in statuses("/tool-templates/{id}", "delete")
    assert (await api.client.get(f"/tool-templates/{tid}", headers=h)).status == 200
    placed = await api.client.post(
        "/calls/outbound", json={"destination": DESTINATION, "assistant_id": aid}, headers=h
    )
    assert placed.status == 200, await placed.text()

    assert (await api.client.delete(f"/tool-templates/{other}", headers=h)).status == 204
    await api.client.patch(f"/assistants/{aid}", json={"tools": tools[:1]}, headers=h)
    assert (await api.client.delete(f"/tool-templates/{tid}", headers=h)).status == 204


async def test_an_unknown_template_is_a_422_when_the_call_is_placed(api: Api) -> None:
    """As when an assistant naming it is saved (it was a 400 here)."""
    h = api.auth()
    transient = {"tools": [{"template_id": "no-such-template"}]}
    placed = await api.client.post(
        "/calls/outbound", json={"destination": DESTINATION, "assistant": transient}, headers=h
    )
    assert placed.status == 422
    body = await placed.json()
    assert body["error"] == "Unknown tool template"
    assert "tools[0].template_id" in body["message"]
    assert api.pbx.originated == []


TRANSFER = {
    "type": "transfer_call",
    "destinations": ["sales"],
    "mode": "blind",
    "message": "Transferring you now.",
}


async def test_each_tool_type_takes_its_own_fields_in_the_schema_too(api: Api) -> None:
    """A transfer tool's fields are schema-valid for a transfer tool only (a webhook tool
    with destinations, which the API refuses, was schema-valid)."""
    conforms(TRANSFER, "Tool")
    conforms(LOOKUP, "Tool")
    webhook_with_destinations = {**LOOKUP, "destinations": ["sales"]}
    assert not is_valid(webhook_with_destinations, "Tool")
    h = api.auth()
    refused = await api.client.post("/tool-templates", json=webhook_with_destinations, headers=h)
    assert refused.status == 400
    created = await api.client.post("/tool-templates", json=TRANSFER, headers=h)
    assert created.status == 201, await created.text()
    conforms(await created.json(), "ToolTemplate")


async def test_a_refused_server_url_is_400(api: Api) -> None:
    """A schema-valid URL the egress policy refuses (here: no host) is a 400 naming the key,
    as a webhook's (it was 422)."""
    body = {**LOOKUP, "server": {"url": "http://"}}
    assert is_valid(body, "Tool")
    resp = await api.client.post("/tool-templates", json=body, headers=api.auth())
    assert resp.status == 400
    refused = await resp.json()
    assert refused["error"] == "URL refused"
    assert refused["message"].startswith("body.server.url: ")
    assert 422 not in statuses("/tool-templates", "post")


SECURE = {
    "type": "collect_secure_digits",
    "name": "card_number",
    "prompt": "Please key in your card number, then press hash.",
    "min_digits": 15,
    "max_digits": 19,
    "terminator": "#",
    "digit_timeout_seconds": 10,
    "timeout_seconds": 10,
}


async def test_a_secure_digits_tool_is_stored_as_sent_and_its_bounds_are_checked(
    api: Api,
) -> None:
    h = api.auth()
    resp = await api.client.post("/tool-templates", json=SECURE, headers=h)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert {k: created[k] for k in SECURE} == SECURE
    assert is_valid(created, "ToolTemplate")
    assistant = {"name": "Payments", "tools": [{**SECURE, "terminator": ""}]}
    saved = await api.client.post("/assistants", json=assistant, headers=h)
    assert saved.status == 201, await saved.text()
    for bad, says in (
        ({"min_digits": 20}, "min_digits must not exceed max_digits"),
        ({"max_digits": 40}, "max_digits"),
        ({"terminator": "5"}, "terminator"),
        ({"digits": "1234"}, "digits"),
    ):
        refused = await api.client.post("/tool-templates", json={**SECURE, **bad}, headers=h)
        assert refused.status == 400, bad
        assert says in (await refused.text()), bad


@pytest.mark.parametrize("kind", [{}, [None], 3, None])
async def test_a_type_that_is_no_name_is_a_400_not_a_server_error(api: Api, kind: object) -> None:
    h = api.auth()
    posted = await api.client.post("/tool-templates", json={**LOOKUP, "type": kind}, headers=h)
    assert posted.status == 400, await posted.text()
    assert (await posted.json())["error"] == "Bad request"
    tid = (await (await api.client.post("/tool-templates", json=LOOKUP, headers=h)).json())["id"]
    patched = await api.client.patch(
        f"/tool-templates/{tid}", json={**LOOKUP, "type": kind}, headers=h
    )
    assert patched.status == 400, await patched.text()
    kept = await (await api.client.get(f"/tool-templates/{tid}", headers=h)).json()
    assert kept["type"] == "webhook"
    assistant = {"name": "Orders", "tools": [{**LOOKUP, "type": kind}]}
    refused = await api.client.post("/assistants", json=assistant, headers=h)
    assert refused.status == 400, await refused.text()
