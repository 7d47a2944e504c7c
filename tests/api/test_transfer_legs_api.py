"""POST /calls/{id}/control: a transfer to a phone number dials a leg on a trunk, and passes
what a new call passes (the trunk open to the organization, its spending limit, its calls at
once) before the PBX is asked, and a test call's dials nothing at all; an operator's handoffs
count against the call's ``max_handoffs``, as the model's do."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api.conftest import Api, serving
from api.test_calls_api import DESTINATION, post_outbound
from api.test_control_api import RecordingLiveCall, active_call, control
from api.test_squads_api import _create as create_squad
from fakes.world import ACME, GLOBEX, SUPPORT_ID, make_settings, org_id
from voicedock.config import OrganizationLimitSettings, Settings, TrunkSettings
from voicedock.domain.ids import new_inbound_call_id
from voicedock.domain.records import Call, CallStatus, Direction, PhoneNumber, utcnow
from voicedock.organizations.billing import set_spend_limit
from voicedock.pbx.base import InboundCall

pytestmark = pytest.mark.unit

NUMBER = "+31201234567"  # a fixed line in the Netherlands: the policy allows it
STALE_NUMBER = "+31850835099"


async def _refusals(api: Api, call_id: str) -> list[Any]:
    events = await api.service.store.list_events(call_id)
    return [e.data for e in events if e.type == "security"]


async def _transfer_controls(api: Api, call_id: str) -> list[Any]:
    events = await api.service.store.list_events(call_id)
    return [e.data for e in events if e.type == "control" and e.data["type"] == "transfer"]


async def test_a_transfer_is_refused_once_the_spending_limit_is_reached(api: Api) -> None:
    call_id = await active_call(api)
    await set_spend_limit(api.service.store, ACME, "0", None, utcnow())
    resp = await control(api, call_id, {"type": "transfer", "destination": NUMBER})
    assert resp.status == 402, await resp.text()
    body = await resp.json()
    assert body["error"] == "Spending limit reached", body
    assert api.pbx.transfers == []
    assert await _refusals(api, call_id) == [
        {
            "type": "transfer-refused",
            "reason": "spend-limit-reached",
            "destination": "+312***67",
            "mode": "blind",
        }
    ]
    assert await _transfer_controls(api, call_id) == []  # nothing was sent anywhere
    # An internal target dials no trunk: it costs nothing and is still taken.
    resp = await control(api, call_id, {"type": "transfer", "destination": "sales"})
    assert resp.status == 200, await resp.text()
    assert [t.destination for _, t in api.pbx.transfers] == ["sales"]


async def test_a_test_calls_transfer_is_recorded_and_dials_nothing(api: Api) -> None:
    """On no number (a test call has none), past no check of a leg: nothing reaches the PBX,
    the announcement is still said, the answer and the event say it was simulated."""
    moment = utcnow()
    call = Call(
        id=new_inbound_call_id(None), organization_id=org_id(ACME), direction=Direction.INBOUND,
        status=CallStatus.IN_PROGRESS, caller_phone=None, assistant_phone=None,
        test_run_id="run-1", owner_node=api.service.engine.node_id,
        created_at=moment, updated_at=moment, started_at=moment,
    )  # fmt: skip
    async with api.service.store.transaction() as tx:
        await tx.insert_call(call)
    live = RecordingLiveCall()
    api.service.engine.records.attach(call.id, live)
    for destination, mode in ((NUMBER, "blind"), ("sales", "warm")):
        body = {"type": "transfer", "destination": destination, "mode": mode}
        resp = await control(api, call.id, {**body, "announcement": "One moment."})
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {
            "success": True,
            "message": f"Test call: would transfer to {destination}; nothing was dialled",
        }
    assert api.pbx.transfers == []
    assert live.transfers == []  # no warm briefing, no agent leg
    assert live.said == ["One moment.", "One moment."]
    recorded = [(c["destination"], c["result"]) for c in await _transfer_controls(api, call.id)]
    assert recorded == [(NUMBER, "simulated"), ("sales", "simulated")]
    # The destination policy still holds.
    resp = await control(api, call.id, {"type": "transfer", "destination": "+881612345678"})
    assert resp.status == 403, await resp.text()


@pytest.fixture
async def limited(database_url: str) -> AsyncIterator[Api]:
    """Acme may have 2 calls at once; a trunk open to Globex only carries a number Acme was
    given under an earlier configuration."""
    settings: Settings = make_settings(database_url)
    settings.limits.organizations = [
        OrganizationLimitSettings(organization=ACME, max_concurrent_calls=2)
    ]
    settings.trunks.append(
        TrunkSettings(name="globex-only", endpoint="globex-ep", organizations=[GLOBEX])
    )
    async with serving(settings) as running:
        yield running


async def test_a_transfer_is_refused_at_the_organizations_calls_at_once(limited: Api) -> None:
    api = limited
    first = await active_call(api)
    resp = await control(api, first, {"type": "transfer", "destination": NUMBER})
    assert resp.status == 200, await resp.text()  # 1 call: its leg makes 2, the limit
    second = await active_call(api)
    resp = await control(api, second, {"type": "transfer", "destination": NUMBER})
    assert resp.status == 429, await resp.text()
    assert (await resp.json())["error"] == "Call limit reached"
    assert resp.headers["Retry-After"] == "5"
    assert [cid for cid, _ in api.pbx.transfers] == [first]
    (refused,) = await _refusals(api, second)
    assert refused["reason"] == "call-limit-reached"


async def test_a_transfer_is_refused_on_a_trunk_closed_to_the_organization(limited: Api) -> None:
    api = limited
    stale = PhoneNumber(
        str(uuid.uuid4()), org_id(ACME), STALE_NUMBER, "globex-only", 5, assistant_id=SUPPORT_ID
    )
    stale.created_at = stale.updated_at = utcnow()
    async with api.service.store.transaction() as tx:
        await tx.insert_phone_number(stale)
    call_id = await api.service.engine.inbound.accept(
        InboundCall("chan-stale", "+31612345678", STALE_NUMBER)
    )
    assert call_id is not None
    await api.pbx.answer(call_id)
    resp = await control(api, call_id, {"type": "transfer", "destination": NUMBER})
    assert resp.status == 403, await resp.text()
    body = await resp.json()
    assert body["error"] == "Trunk not allowed", body
    assert "globex-only" in body["message"]
    assert api.pbx.transfers == []
    (refused,) = await _refusals(api, call_id)
    assert refused["reason"] == "trunk-not-allowed"
    detail = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    assert detail["status"] == "in-progress"


@pytest.fixture
async def two_handoffs(database_url: str) -> AsyncIterator[Api]:
    settings = make_settings(database_url)
    settings.calls.max_handoffs = 2
    async with serving(settings) as running:
        yield running


async def test_an_operators_handoffs_stop_at_the_calls_max_handoffs(two_handoffs: Api) -> None:
    api = two_handoffs
    squad_id = await create_squad(api)
    resp = await post_outbound(api, {"destination": DESTINATION, "squad_id": squad_id})
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    await api.pbx.answer(call_id)
    for member in ("billing", "receptionist"):
        resp = await control(api, call_id, {"type": "handoff", "member": member})
        assert resp.status == 200, await resp.text()
    resp = await control(api, call_id, {"type": "handoff", "member": "billing"})
    assert resp.status == 409, await resp.text()
    body = await resp.json()
    assert body["error"] == "Handoff limit reached", body
    assert "(2)" in body["message"]
    events = await api.service.store.list_events(call_id)
    asked = [e.data["member"] for e in events if e.type == "control"]
    assert asked == ["billing", "receptionist"]  # the refused one is not recorded
