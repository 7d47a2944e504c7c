"""Analysis templates over REST: stored per organization, bounded as an assistant's
analysis_plan, referenced by an assistant's ``analysis_plan`` (checked when it is saved),
resolved into the call's own configuration when a call is placed, and kept while an assistant
references them."""

from __future__ import annotations

import jsonschema._keywords
import pytest

from api.conftest import Api
from api.contract import conforms, is_valid
from fakes.world import DESTINATION
from voicedock.domain.tenant_schemas import MAX_SCHEMA_BYTES

pytestmark = pytest.mark.unit

SCHEMA = {
    "type": "object",
    "properties": {"appointment_day": {"type": "string"}, "insured": {"type": "boolean"}},
    "required": ["appointment_day"],
}
PLAN = {
    "summary_prompt": "Say which day was booked.",
    "structured_data_schema": SCHEMA,
    "success_evaluation_rubric": "Was an appointment booked?",
}
TEMPLATE = {"name": "Dental booking", **PLAN}


async def _create(api: Api, body: object = TEMPLATE) -> str:
    resp = await api.client.post("/analysis-templates", json=body, headers=api.auth())
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def test_analysis_template_crud_per_organization(api: Api) -> None:
    h = api.auth()
    resp = await api.client.post("/analysis-templates", json=TEMPLATE, headers=h)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    conforms(created, "AnalysisTemplate")
    assert {k: created[k] for k in TEMPLATE} == TEMPLATE
    tid = created["id"]
    listed = await (await api.client.get("/analysis-templates", headers=h)).json()
    assert [t["id"] for t in listed["analysis_templates"]] == [tid]
    other = await api.client.get(f"/analysis-templates/{tid}", headers=api.auth(api.globex_key))
    assert other.status == 404
    assert (await other.json())["error"] == "Analysis template not found"
    theirs = await api.client.get("/analysis-templates", headers=api.auth(api.globex_key))
    assert (await theirs.json())["analysis_templates"] == []

    patched = await api.client.patch(
        f"/analysis-templates/{tid}",
        json={"name": "Booking", "success_evaluation_rubric": None},
        headers=h,
    )
    assert patched.status == 200, await patched.text()
    body = await patched.json()
    assert body["name"] == "Booking"
    assert body["success_evaluation_rubric"] is None
    assert body["summary_prompt"] == PLAN["summary_prompt"]  # not sent: kept
    assert (await api.client.delete(f"/analysis-templates/{tid}", headers=h)).status == 204
    assert (await api.client.get(f"/analysis-templates/{tid}", headers=h)).status == 404


@pytest.mark.parametrize(
    ("body", "names", "in_the_document"),
    [
        ({**PLAN}, "name is required", True),
        ({"name": "x", "summary_prompt": "y" * 5001}, "summary_prompt", True),
        ({"name": "x", "template_id": "other"}, "template_id", True),
        ({"name": "two\nlines"}, "name", True),
        # The schema's own bounds are said in its description (domain/tenant_schemas.py).
        ({"name": "x", "structured_data_schema": {"pattern": "a+"}}, "pattern", False),
        (
            {"name": "x", "structured_data_schema": {"description": "d" * MAX_SCHEMA_BYTES}},
            "structured_data_schema",
            False,
        ),
    ],
)
async def test_a_template_is_bounded_as_an_analysis_plan(
    api: Api, body: object, names: str, in_the_document: bool
) -> None:
    resp = await api.client.post("/analysis-templates", json=body, headers=api.auth())
    assert resp.status == 400, await resp.text()
    assert names in (await resp.json())["message"]
    if in_the_document:
        assert not is_valid(body, "AnalysisTemplateCreate")


async def test_a_long_type_list_is_refused_without_comparing_every_pair(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The meta-schema checks a ``type`` list inside an ``anyOf``, gathering every error of
    the branch: 1,300 distinct objects there were ~850,000 comparisons (1.5 s) on the event
    loop before the 400."""

    def pairwise(_items: object) -> bool:
        raise AssertionError("every pair of the type list compared on the event loop")

    monkeypatch.setattr(jsonschema._keywords, "uniq", pairwise)
    schema = {"type": [{"a": i} for i in range(1300)]}
    body = {"name": "Types", "structured_data_schema": schema}
    resp = await api.client.post("/analysis-templates", json=body, headers=api.auth())
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["message"].startswith("body.structured_data_schema.type must be")


async def test_a_call_carries_the_templates_plan(api: Api) -> None:
    h = api.auth()
    tid = await _create(api)
    assistant = {"name": "Bookings", "analysis_plan": {"template_id": tid}}
    resp = await api.client.post("/assistants", json=assistant, headers=h)
    assert resp.status == 201, await resp.text()
    saved = await resp.json()
    assert saved["analysis_plan"] == {"template_id": tid}
    conforms(saved, "Assistant")
    placed = await api.client.post(
        "/calls/outbound", json={"destination": DESTINATION, "assistant_id": saved["id"]}, headers=h
    )
    assert placed.status == 200, await placed.text()
    call = await api.service.store.get_call(None, (await placed.json())["call_id"])
    assert call is not None
    assert call.assistant_config.analysis_plan == PLAN

    # A later change of the template is the next call's plan, not this one's.
    await api.client.patch(
        f"/analysis-templates/{tid}", json={"summary_prompt": "One sentence."}, headers=h
    )
    again = await api.service.store.get_call(None, call.id)
    assert again is not None
    assert again.assistant_config.analysis_plan == PLAN


async def test_a_referenced_template_is_kept_and_an_unknown_one_refused(api: Api) -> None:
    h = api.auth()
    tid = await _create(api)
    unknown = {"name": "Bookings", "analysis_plan": {"template_id": "no-such-template"}}
    resp = await api.client.post("/assistants", json=unknown, headers=h)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"] == "Unknown analysis template"
    # Another organization's template is as unknown as none.
    theirs = await api.client.post(
        "/assistants",
        json={"name": "Theirs", "analysis_plan": {"template_id": tid}},
        headers=api.auth(api.globex_key),
    )
    assert theirs.status == 422
    mixed = {"name": "Bookings", "analysis_plan": {"template_id": tid, "summary_prompt": "x"}}
    assert (await api.client.post("/assistants", json=mixed, headers=h)).status == 400

    resp = await api.client.post(
        "/assistants", json={"name": "Bookings", "analysis_plan": {"template_id": tid}}, headers=h
    )
    aid = (await resp.json())["id"]
    refused = await api.client.delete(f"/analysis-templates/{tid}", headers=h)
    assert refused.status == 409
    assert "Bookings" in (await refused.json())["message"]
    await api.client.patch(
        f"/assistants/{aid}", json={"analysis_plan": {"summary_prompt": "Own."}}, headers=h
    )
    assert (await api.client.delete(f"/analysis-templates/{tid}", headers=h)).status == 204


async def test_a_transient_assistant_naming_no_template_is_a_422_as_a_saved_one(api: Api) -> None:
    """The same rule as when an assistant is saved: a valid body naming an object of the
    organization that does not exist (it was a 400 here, a 422 there)."""
    transient = {"analysis_plan": {"template_id": "no-such-template"}}
    placed = await api.client.post(
        "/calls/outbound",
        json={"destination": DESTINATION, "assistant": transient},
        headers=api.auth(),
    )
    assert placed.status == 422
    body = await placed.json()
    assert body["error"] == "Unknown analysis template"
    assert "analysis_plan.template_id" in body["message"]
    assert api.pbx.originated == []
