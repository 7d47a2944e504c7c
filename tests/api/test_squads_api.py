"""Squads over REST: stored per organization (another's is a 404), paged by cursor, refused
naming the field (schema and the rules no schema states), a saved assistant the organization
does not have refused (422), secrets of a member's configuration masked and kept."""

from __future__ import annotations

import asyncio

import pytest

from api.conftest import Api
from api.contract import conforms
from api.test_calls_api import DESTINATION, place, post_outbound
from fakes.world import ACME, SUPPORT_ID, org_id
from voicedock.domain.records import CallMessage
from voicedock.webhooks.publisher import report_payload

pytestmark = pytest.mark.unit

RECEPTIONIST = {
    "name": "receptionist",
    "assistant_id": SUPPORT_ID,
    "destinations": [
        {
            "member": "billing",
            "description": "The caller asks about an invoice or a payment.",
            "message": "Hello, billing here. How can I help with your invoice?",
        }
    ],
}
BILLING = {
    "name": "billing",
    "assistant": {
        "system_prompt": "You answer questions about invoices.",
        "tts_config": {"provider": "offline"},
    },
    "destinations": [{"member": "receptionist", "description": "Anything but billing."}],
}
SQUAD = {"name": "Front desk", "members": [RECEPTIONIST, BILLING]}


async def _create(api: Api, body: object = SQUAD) -> str:
    resp = await api.client.post("/squads", json=body, headers=api.auth())
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def test_a_squad_is_stored_read_updated_and_deleted_per_organization(api: Api) -> None:
    h = api.auth()
    resp = await api.client.post("/squads", json=SQUAD, headers=h)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    conforms(created, "Squad")
    assert [m["name"] for m in created["members"]] == ["receptionist", "billing"]
    assert created["members"][0]["destinations"][0]["member"] == "billing"
    assert (
        created["members"][1]["assistant"]["system_prompt"] == BILLING["assistant"]["system_prompt"]
    )  # type: ignore[index]
    squad_id = created["id"]
    got = await (await api.client.get(f"/squads/{squad_id}", headers=h)).json()
    assert got == created

    theirs = await api.client.get(f"/squads/{squad_id}", headers=api.auth(api.globex_key))
    assert theirs.status == 404
    assert (await theirs.json()) == {"error": "Squad not found", "message": "no squad with this id"}
    listed = await api.client.get("/squads", headers=api.auth(api.globex_key))
    assert (await listed.json())["squads"] == []

    patched = await api.client.patch(
        f"/squads/{squad_id}", json={"name": "Desk", "members": [BILLING | {"destinations": []}]},
        headers=h,
    )  # fmt: skip
    assert patched.status == 200, await patched.text()
    body = await patched.json()
    assert (body["name"], [m["name"] for m in body["members"]]) == ("Desk", ["billing"])

    deleted = await api.client.delete(f"/squads/{squad_id}", headers=h)
    assert deleted.status == 204
    assert (await api.client.get(f"/squads/{squad_id}", headers=h)).status == 404


async def test_squads_are_paged_by_cursor(api: Api) -> None:
    ids = [await _create(api, {**SQUAD, "name": f"squad {n}"}) for n in range(5)]
    seen: list[str] = []
    cursor = ""
    for _ in range(3):
        resp = await api.client.get(
            "/squads", params={"limit": "2", "cursor": cursor}, headers=api.auth()
        )
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        conforms(page, "SquadList")
        assert page["pagination"]["total"] == 5
        seen += [s["id"] for s in page["squads"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


@pytest.mark.parametrize(
    ("members", "named"),
    [
        ([RECEPTIONIST, {**BILLING, "name": "receptionist"}], "members[1].name"),
        ([{**RECEPTIONIST, "name": "Front Desk"}, BILLING], "members[0].name"),
        ([RECEPTIONIST], "members[0].destinations[0].member"),
        (
            [{**RECEPTIONIST, "destinations": [{"member": "receptionist", "description": "x"}]}],
            "members[0].destinations[0].member",
        ),
        ([RECEPTIONIST, {**BILLING, "assistant_id": SUPPORT_ID}], "members[1]."),
        ([RECEPTIONIST, {"name": "billing"}], "members[1].assistant_id or assistant"),
        (
            [RECEPTIONIST, {**BILLING, "assistant": {"system_prompt": 5}}],
            "members[1].assistant.system_prompt",
        ),
        ([RECEPTIONIST, {**BILLING, "destinations": [{"member": "receptionist"}]}], "description"),
        ([], "members"),
    ],
)
async def test_a_squad_is_refused_naming_the_field(
    api: Api, members: list[object], named: str
) -> None:
    resp = await api.client.post(
        "/squads", json={"name": "x", "members": members}, headers=api.auth()
    )
    assert resp.status == 400, await resp.text()
    assert named in (await resp.json())["message"]


async def test_a_saved_assistant_of_another_organization_is_refused(api: Api) -> None:
    members = [{**RECEPTIONIST, "assistant_id": "asst_nobody"}, BILLING]
    resp = await api.client.post(
        "/squads", json={"name": "x", "members": members}, headers=api.auth()
    )
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["message"] == "members[0].assistant_id: no assistant with this id"


async def test_a_members_secret_is_masked_and_kept_when_sent_back(api: Api) -> None:
    llm = {"provider": "openai", "api_key": "sk-abcdef123456"}
    keyed = {**BILLING, "assistant": {**BILLING["assistant"], "llm_config": llm}}  # type: ignore[dict-item]
    squad_id = await _create(api, {"name": "x", "members": [RECEPTIONIST, keyed]})
    got = await (await api.client.get(f"/squads/{squad_id}", headers=api.auth())).json()
    shown = got["members"][1]["assistant"]["llm_config"]["api_key"]
    assert shown == "****3456"
    resp = await api.client.patch(
        f"/squads/{squad_id}", json={"members": got["members"]}, headers=api.auth()
    )
    assert resp.status == 200, await resp.text()
    squad = await api.service.store.get_squad(org_id(ACME), squad_id)
    assert squad is not None
    stored = squad.members[1].assistant
    assert stored is not None
    assert stored["llm_config"] == llm


async def test_a_call_placed_with_a_squad_runs_its_first_member_and_keeps_every_member(
    api: Api,
) -> None:
    squad_id = await _create(api)
    resp = await post_outbound(api, {"destination": DESTINATION, "squad_id": squad_id})
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    call = await api.service.store.get_call(org_id(ACME), call_id)
    assert call is not None
    assert call.assistant_id == SUPPORT_ID  # the receptionist, a saved assistant
    assert call.squad is not None
    assert [m.name for m in call.squad.members] == ["receptionist", "billing"]
    billing = call.squad.members[1].config
    assert billing.system_prompt == BILLING["assistant"]["system_prompt"]  # type: ignore[index]
    assert call.squad.members[0].destinations[0].member == "billing"

    # Changing the squad later changes no call placed with it.
    alone = {"members": [BILLING | {"destinations": []}]}
    await api.client.patch(f"/squads/{squad_id}", json=alone, headers=api.auth())
    again = await api.service.store.get_call(org_id(ACME), call_id)
    assert again is not None
    assert again.squad == call.squad

    # The operator's handoff names a member of the call's squad (422 otherwise).
    await api.pbx.answer(call_id)
    body = {"type": "handoff", "member": "sales"}
    unknown = await api.client.post(f"/calls/{call_id}/control", json=body, headers=api.auth())
    assert unknown.status == 422, await unknown.text()
    body = {"type": "handoff", "assistant_id": SUPPORT_ID}
    ok = await api.client.post(f"/calls/{call_id}/control", json=body, headers=api.auth())
    assert ok.status == 200, await ok.text()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"squad_id": "nope"}, 404),
        ({"squad_id": "x", "assistant_id": SUPPORT_ID}, 400),
    ],
)
async def test_a_call_with_a_squad_is_refused(api: Api, body: dict[str, str], status: int) -> None:
    resp = await post_outbound(api, {"destination": DESTINATION, **body})
    assert resp.status == status, await resp.text()


async def test_the_operators_handoff_needs_a_call_with_a_squad(api: Api) -> None:
    call_id = await place(api)
    await api.pbx.answer(call_id)
    body = {"type": "handoff", "member": "billing"}
    resp = await api.client.post(f"/calls/{call_id}/control", json=body, headers=api.auth())
    assert resp.status == 409, await resp.text()
    assert (await resp.json())["error"] == "No squad"
    both = {"type": "handoff", "member": "billing", "assistant_id": SUPPORT_ID}
    resp = await api.client.post(f"/calls/{call_id}/control", json=both, headers=api.auth())
    assert resp.status == 400, await resp.text()


async def test_a_number_is_answered_by_a_squad_of_the_organization(api: Api) -> None:
    squad_id = await _create(api)
    numbers = await (await api.client.get("/phone-numbers", headers=api.auth())).json()
    number_id = numbers["phone_numbers"][0]["id"]
    unknown = await api.client.patch(
        f"/phone-numbers/{number_id}", json={"squad_id": "nope"}, headers=api.auth()
    )
    assert unknown.status == 422, await unknown.text()
    assert (await unknown.json())["error"] == "Unknown squad"
    resp = await api.client.patch(
        f"/phone-numbers/{number_id}", json={"squad_id": squad_id}, headers=api.auth()
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    conforms(body, "PhoneNumber")
    assert body["squad_id"] == squad_id
    cleared = await api.client.patch(
        f"/phone-numbers/{number_id}", json={"squad_id": None}, headers=api.auth()
    )
    assert (await cleared.json())["squad_id"] is None


async def test_a_campaigns_calls_are_placed_with_its_squad(api: Api) -> None:
    squad_id = await _create(api)
    body = {
        "name": "Reminders",
        "squad_id": squad_id,
        "contacts": [{"destination": DESTINATION}],
    }
    both = await api.client.post(
        "/campaigns", json={**body, "assistant_id": SUPPORT_ID}, headers=api.auth()
    )
    assert both.status == 400, await both.text()
    created = await api.client.post("/campaigns", json=body, headers=api.auth())
    assert created.status == 201, await created.text()
    for _ in range(200):  # the node's dialer places the contact's call
        if api.pbx.originated:
            break
        await asyncio.sleep(0.05)
    call = await api.service.store.get_call(org_id(ACME), api.pbx.originated[0].call_id)
    assert call is not None
    assert call.assistant_id == SUPPORT_ID  # the receptionist's
    assert call.squad is not None
    assert call.squad.squad_id == squad_id
    assert [m.name for m in call.squad.members] == ["receptionist", "billing"]


async def test_a_call_placed_with_a_squad_of_its_own(api: Api) -> None:
    inline = {"members": [RECEPTIONIST, BILLING]}
    resp = await post_outbound(api, {"destination": DESTINATION, "squad": inline})
    assert resp.status == 200, await resp.text()
    call = await api.service.store.get_call(org_id(ACME), (await resp.json())["call_id"])
    assert call is not None
    assert call.squad is not None
    assert call.squad.squad_id is None  # stored nowhere but with the call
    assert [m.name for m in call.squad.members] == ["receptionist", "billing"]
    twice = {"members": [RECEPTIONIST, {**BILLING, "name": "receptionist"}]}
    refused = await post_outbound(api, {"destination": DESTINATION, "squad": twice})
    assert refused.status == 400, await refused.text()
    assert "squad.members[1].name" in (await refused.json())["message"]
    unknown = {"members": [{**RECEPTIONIST, "colour": "red"}, BILLING]}
    refused = await post_outbound(api, {"destination": DESTINATION, "squad": unknown})
    assert refused.status == 400, await refused.text()
    assert "squad.members[0]" in (await refused.json())["message"]
    both = {"destination": DESTINATION, "squad": inline, "squad_id": "x"}
    assert (await post_outbound(api, both)).status == 400


@pytest.mark.parametrize("field", ["assistant", "assistant_override"])
async def test_a_members_configuration_that_is_no_object_is_refused(api: Api, field: str) -> None:
    member = {**RECEPTIONIST, field: 5}
    if field == "assistant":
        member.pop("assistant_id")
    resp = await api.client.post(
        "/squads", json={"name": "x", "members": [member, BILLING]}, headers=api.auth()
    )
    assert resp.status == 400, await resp.text()
    assert f"members[0].{field}" in (await resp.json())["message"]


async def test_a_squad_call_names_its_squad_in_its_record_the_list_and_its_report(
    api: Api,
) -> None:
    squad_id = await _create(api)
    resp = await post_outbound(api, {"destination": DESTINATION, "squad_id": squad_id})
    call_id = str((await resp.json())["call_id"])
    alone = await place(api)
    got = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    conforms(got, "Call")
    assert got["squad_id"] == squad_id
    listed = await (await api.client.get("/calls", headers=api.auth())).json()
    conforms(listed, "CallList")
    named = {c["id"]: c["squad_id"] for c in listed["calls"]}
    assert named[call_id] == squad_id
    assert named[alone] is None
    call = await api.service.store.get_call(org_id(ACME), call_id)
    assert call is not None
    assert report_payload(call, [], None)["data"]["squad_id"] == squad_id


async def test_what_a_squad_uses_or_is_used_by_is_not_deleted_under_it(api: Api) -> None:
    h = api.auth()
    made = await api.client.post(
        "/assistants", json={"name": "Desk", "system_prompt": "You answer."}, headers=h
    )
    assert made.status == 201, await made.text()
    desk_id = (await made.json())["id"]
    squad_id = await _create(
        api, {**SQUAD, "members": [RECEPTIONIST | {"assistant_id": desk_id}, BILLING]}
    )
    # The receptionist's saved assistant is a member: deleting it is refused, naming the squad.
    refused = await api.client.delete(f"/assistants/{desk_id}", headers=h)
    assert refused.status == 409, await refused.text()
    assert (await refused.json())["message"] == (
        "the assistant is a member of squad(s): Front desk; remove it from them first"
    )

    # A number answering with the squad holds it.
    numbers = await (await api.client.get("/phone-numbers", headers=h)).json()
    number = numbers["phone_numbers"][0]
    body = {"squad_id": squad_id}
    await api.client.patch(f"/phone-numbers/{number['id']}", json=body, headers=h)
    refused = await api.client.delete(f"/squads/{squad_id}", headers=h)
    assert refused.status == 409, await refused.text()
    message = (await refused.json())["message"]
    assert message.startswith(f"phone number(s) {number['number']} answer with this squad"), message
    body = {"squad_id": None}
    await api.client.patch(f"/phone-numbers/{number['id']}", json=body, headers=h)

    # So does a campaign still calling, until it is cancelled.
    campaign = {
        "name": "Reminders",
        "squad_id": squad_id,
        "contacts": [{"destination": DESTINATION}],
    }
    created = await api.client.post("/campaigns", json=campaign, headers=h)
    assert created.status == 201, await created.text()
    campaign_id = (await created.json())["id"]
    refused = await api.client.delete(f"/squads/{squad_id}", headers=h)
    assert refused.status == 409, await refused.text()
    message = (await refused.json())["message"]
    assert message.startswith("campaign(s) Reminders place their calls with this squad"), message
    cancelled = await api.client.post(f"/campaigns/{campaign_id}/cancel", headers=h)
    assert cancelled.status == 200, await cancelled.text()
    assert (await api.client.delete(f"/squads/{squad_id}", headers=h)).status == 204
    # With its squad gone, the assistant is deleted.
    assert (await api.client.delete(f"/assistants/{desk_id}", headers=h)).status == 204


async def test_a_squad_calls_record_and_report_list_the_members_that_had_it(api: Api) -> None:
    squad_id = await _create(api)
    resp = await post_outbound(api, {"destination": DESTINATION, "squad_id": squad_id})
    call_id = str((await resp.json())["call_id"])
    got = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    receptionist = {"member": "receptionist", "assistant_id": SUPPORT_ID, "agent_name": "Support"}
    assert got["members"] == [receptionist]  # the first member answers
    async with api.service.store.transaction() as tx:
        for member in ("receptionist", "billing", "receptionist"):
            await tx.add_message(CallMessage(call_id, "assistant", "Hello.", member=member))
    got = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    conforms(got, "Call")
    billing = {"member": "billing", "assistant_id": None, "agent_name": None}
    assert got["members"] == [receptionist, billing]
    call = await api.service.store.get_call(org_id(ACME), call_id)
    assert call is not None
    messages = await api.service.store.list_messages(call_id)
    assert report_payload(call, messages, None)["data"]["members"] == [receptionist, billing]
    alone = await (await api.client.get(f"/calls/{await place(api)}", headers=api.auth())).json()
    assert alone["members"] is None
