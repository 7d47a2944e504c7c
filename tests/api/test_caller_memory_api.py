"""Callers remembered, over REST: an assistant with ``memory`` saved; what earlier calls of a
callee left (their summaries, as the calls' ends store them) is in the instructions of the
callee's next call placed through REST, the latest first and at most ``recent_calls``; another
callee's, an assistant without memory and another organization's are told nothing; the
caller's memory is listed, erased one by one and whole (the audit trail records it), after
which the next call is told nothing. The lab test (e2e/test_llm_e2e.py) proves the calls' ends
leave it and the LLM receives it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from api.conftest import Api
from api.contract import conforms
from fakes.world import ACME, DESTINATION, GLOBEX, org_id
from voicedock.calls.assistants.caller_memory import HEADING, left_by
from voicedock.domain.assistant_config import config_of
from voicedock.domain.records import Call, CallStatus, Direction, utcnow
from voicedock.store.protocols.audit import AuditQuery

pytestmark = pytest.mark.unit

OTHER = "+31612345699"


async def _json(resp: Any, status: int = 200) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json()


async def _left(api: Api, organization: str, party: str, summary: str, age_h: int) -> str:
    """A call of an assistant with memory to ``party``, ended ``age_h`` hours ago with
    ``summary``: what its end stores (``left_by``)."""
    ended = utcnow() - timedelta(hours=age_h)
    call = Call(
        id=f"call-{uuid.uuid4().hex[:12]}",
        organization_id=organization,
        direction=Direction.OUTBOUND,
        status=CallStatus.ENDED,
        caller_phone=party,
        assistant_phone=None,
        assistant_config=config_of({"memory": {}}),
        summary=summary,
        analysis_result={"structured_data": {"name": "Jan"}},
        ended_at=ended,
    )
    memory = left_by(call)
    assert memory is not None
    async with api.service.store.transaction() as tx:
        await tx.insert_call(call)
        await tx.insert_caller_memory(memory)
    return memory.id


async def _told(api: Api, assistant_id: str, destination: str = DESTINATION) -> str:
    """The instructions a call placed through REST runs with (its snapshot); the call ended."""
    placed = await _json(
        await api.client.post(
            "/calls/outbound",
            json={"destination": destination, "assistant_id": assistant_id},
            headers=api.auth(),
        )
    )
    call_id = placed["call_id"]
    stored = await api.service.store.get_call(None, call_id)
    assert stored is not None
    prompt = stored.assistant_config.system_prompt
    await _json(
        await api.client.post(
            f"/calls/{call_id}/control", json={"type": "end-call"}, headers=api.auth()
        )
    )
    async with asyncio.timeout(10):
        while (now := await api.service.store.get_call(None, call_id)) and now.status != "ended":
            await asyncio.sleep(0.02)
    return prompt if isinstance(prompt, str) else ""


async def _assistant(api: Api, **settings: Any) -> str:
    body = {"name": "Desk", "system_prompt": "You book appointments.", **settings}
    return str(
        (await _json(await api.client.post("/assistants", json=body, headers=api.auth()), 201))[
            "id"
        ]
    )


async def test_a_caller_s_latest_calls_are_told_and_erased(api: Api) -> None:
    acme = org_id(ACME)
    await _left(api, acme, DESTINATION, "Jan asked for Monday; booked at nine.", age_h=48)
    second = await _left(api, acme, DESTINATION, "Jan moved it to Tuesday.", age_h=2)
    await _left(api, acme, DESTINATION, "Oldest call, beyond the two recent.", age_h=96)
    await _left(api, acme, OTHER, "Another caller's call.", age_h=1)
    await _left(api, org_id(GLOBEX), DESTINATION, "Another organization's call.", age_h=1)
    remembering = await _assistant(api, memory={"recent_calls": 2})
    forgetting = await _assistant(api)

    told = await _told(api, remembering)
    assert told.startswith("You book appointments.")
    block = told[told.index(HEADING) :]
    assert block.index("Tuesday") < block.index("Monday")  # newest first
    assert '{"name":"Jan"}' in block
    for absent in ("Oldest call", "Another caller", "Another organization"):
        assert absent not in told
    assert HEADING not in await _told(api, forgetting)
    assert HEADING not in await _told(api, remembering, OTHER.replace("99", "98"))

    listed = await _json(await api.client.get(f"/callers/{DESTINATION}/memory", headers=api.auth()))
    conforms(listed, "CallerMemoryList")
    assert [m["summary"] for m in listed["memories"]][:2] == [
        "Jan moved it to Tuesday.",
        "Jan asked for Monday; booked at nine.",
    ]
    assert all(m["facts"] == {"name": "Jan"} for m in listed["memories"])
    theirs = await _json(
        await api.client.get(f"/callers/{DESTINATION}/memory", headers=api.auth(api.globex_key))
    )
    assert [m["summary"] for m in theirs["memories"]] == ["Another organization's call."]

    resp = await api.client.delete(f"/callers/{DESTINATION}/memory/{second}", headers=api.auth())
    assert resp.status == 204
    resp = await api.client.delete(f"/callers/{DESTINATION}/memory/{second}", headers=api.auth())
    assert (await _json(resp, 404))["error"] == "Caller memory not found"
    assert "Tuesday" not in await _told(api, remembering)

    resp = await api.client.delete(f"/callers/{DESTINATION}/memory", headers=api.auth())
    assert resp.status == 204
    assert HEADING not in await _told(api, remembering)
    left = await _json(await api.client.get(f"/callers/{DESTINATION}/memory", headers=api.auth()))
    assert left["memories"] == []
    trail = await api.service.store.list_audit_events(
        AuditQuery(acme, action="caller_memory.deleted")
    )
    assert trail.total == 2
    # the other organization's memory of the same number is untouched
    theirs = await _json(
        await api.client.get(f"/callers/{DESTINATION}/memory", headers=api.auth(api.globex_key))
    )
    assert len(theirs["memories"]) == 1


def test_a_withheld_number_leaves_nothing() -> None:
    """Calls from withheld or malformed numbers would mix different people under one key."""
    for party in ("anonymous", "", None, "0612345678"):
        call = Call(
            id="call-x",
            organization_id="org",
            direction=Direction.INBOUND,
            status=CallStatus.ENDED,
            caller_phone=party,
            assistant_phone=None,
            assistant_config=config_of({"memory": {}}),
            summary="Someone called.",
        )
        assert left_by(call) is None, party


async def test_bad_numbers_and_settings_are_refused(api: Api) -> None:
    for number in ("31612345678", "+0612345678", "+1"):
        resp = await api.client.get(f"/callers/{number}/memory", headers=api.auth())
        await _json(resp, 400)
    for memory in ({"recent_calls": 0}, {"recent_calls": 11}, {"forever": True}, "yes"):
        body = {"name": "Desk", "memory": memory}
        resp = await api.client.post("/assistants", json=body, headers=api.auth())
        assert resp.status == 400, (memory, await resp.text())


async def test_a_memory_is_corrected_and_the_next_call_is_told_the_correction(api: Api) -> None:
    acme = org_id(ACME)
    memory_id = await _left(api, acme, DESTINATION, "Jan wants Monday.", age_h=2)
    remembering = await _assistant(api, memory={})
    path = f"/callers/{DESTINATION}/memory/{memory_id}"
    edited = await _json(
        await api.client.patch(
            path, json={"summary": " Jan wants Tuesday. ", "facts": {"day": "tue"}},
            headers=api.auth(),
        )
    )  # fmt: skip
    conforms(edited, "CallerMemory")
    assert (edited["summary"], edited["facts"]) == ("Jan wants Tuesday.", {"day": "tue"})
    told = await _told(api, remembering)
    assert "Jan wants Tuesday." in told
    assert '{"day":"tue"}' in told
    assert "Monday" not in told
    cleared = await _json(await api.client.patch(path, json={"facts": None}, headers=api.auth()))
    assert (cleared["summary"], cleared["facts"]) == ("Jan wants Tuesday.", None)
    trail = await api.service.store.list_audit_events(
        AuditQuery(acme, action="caller_memory.updated")
    )
    assert trail.total == 2

    too_many = {f"k{n}": "x" * 50 for n in range(100)}
    for body in ({"summary": "  "}, {"summary": ""}, {"facts": too_many}, {"note": "x"}):
        resp = await api.client.patch(path, json=body, headers=api.auth())
        await _json(resp, 400)
    for where, key in (
        (f"/callers/{OTHER}/memory/{memory_id}", None),  # another caller's number
        (f"/callers/{DESTINATION}/memory/nope", None),
        (path, api.globex_key),  # another organization
    ):
        resp = await api.client.patch(where, json={"summary": "x"}, headers=api.auth(key))
        assert (await _json(resp, 404))["error"] == "Caller memory not found"
