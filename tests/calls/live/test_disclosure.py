"""The AI disclosure through REST (``calls/live/disclosure.py``, ``[ai_disclosure]``), on the
FreeSWITCH fake (the real adapter, engine and runner; speech through ``SpeechFakes``).

Where the operator requires it, an assistant whose first message does not disclose the AI has
voicedock's disclosure said first, then its first message; one whose first message does is
said once, as it is. An organization adds the requirement for its own calls
(``PATCH /organization``) and cannot lift the operator's. A consent plan's message is the
opening it looks at; a refused inbound call's final message begins with it.
``GET /calls/{id}`` and the end-of-call report say how it was given; the transcript holds
what was said.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fakes.tool_server import Answer, ToolServer
from fakes.world import ACME, ACME_NUMBERS, DESTINATION, SUPPORT_ID
from pbx.freeswitch.live_service import TERMINAL, UserPathService, running_freeswitch_service
from pbx.freeswitch.live_service import until as eventually
from voicedock.api.api_keys import issue_api_key
from voicedock.config import Settings
from voicedock.config.disclosure import AiDisclosureSettings
from voicedock.domain.records import KeyScope
from voicedock.domain.webhooks import generate_secret
from voicedock.webhooks.publisher import report_payload

pytestmark = pytest.mark.unit

TEXT = "You are speaking with an automated AI system of Acme."
FIRST = "Hello, this is the city library."
DISCLOSING = "Hello, this is the library's virtual assistant. How can I help?"


def operator_requires(settings: Settings) -> None:
    settings.ai_disclosure = AiDisclosureSettings(required=True, text=TEXT)


def operator_leaves_it(settings: Settings) -> None:
    settings.ai_disclosure = AiDisclosureSettings(text=TEXT)


async def patch_organization(live: UserPathService, body: dict[str, Any]) -> dict[str, Any]:
    """The organization's settings changed with an admin key (as ``PATCH`` needs)."""
    key, _ = await issue_api_key(live.service.store, ACME, "admin", KeyScope.ADMIN)
    auth = {"Authorization": f"Bearer {key}"}
    resp = await live.client.patch("/organization", json=body, headers=auth)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def call_and_end(live: UserPathService, first_message: str, **more: Any) -> dict[str, Any]:
    """An outbound call whose assistant says ``first_message`` (``more``: its further
    settings), ended once it was said; its record with the end-of-call report's data under
    ``report``."""
    speech = live.speech
    assert speech is not None
    speech.tts.texts.clear()  # this call's
    status, body = await live.post(
        "/calls/outbound",
        {"destination": DESTINATION, "assistant": {"first_message": first_message, **more}},
    )
    assert status == 200, body
    call_id = body["call_id"]
    await live.wait_status(call_id, ("in-progress",))
    await eventually(lambda: first_message in " ".join(speech.tts.texts), 10.0)
    status, body = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
    assert status == 200, body
    await live.wait_status(call_id, TERMINAL)
    await eventually(lambda: _stored(live, call_id), 10.0)
    record = await live.call(call_id)
    org = await live.service.store.get_organization_by_name(ACME)
    assert org is not None
    call = await live.service.store.get_call(org.id, call_id)
    assert call is not None
    messages = await live.service.store.list_messages(call_id)
    record["report"] = report_payload(call, messages, None)["data"]
    return record


async def _stored(live: UserPathService, call_id: str) -> bool:
    return (await live.call(call_id))["ai_disclosure"] is not None


def said(record: dict[str, Any]) -> list[str]:
    return [m["content"] for m in record["messages"] if m["role"] == "assistant"]


async def test_a_first_message_without_it_has_the_operators_disclosure_said_first(
    tmp_path: Path,
) -> None:
    async with running_freeswitch_service(tmp_path, operator_requires) as live:
        # The organization turning its own off does not lift the operator's.
        org = await patch_organization(live, {"ai_disclosure_required": False})
        assert (org["ai_disclosure_required"], org["ai_disclosure_required_by_operator"]) == (
            False,
            True,
        )
        record = await call_and_end(live, FIRST)
        assert live.speech is not None
        assert live.speech.tts.texts[:2] == [TEXT, FIRST]  # synthesized in this order
        assert said(record)[:2] == [TEXT, FIRST]
        disclosure = record["ai_disclosure"]
        assert disclosure["at"]
        assert {k: v for k, v in disclosure.items() if k != "at"} == {
            "required_by": "operator",
            "method": "spoken",
            "said": True,
        }
        assert record["report"]["ai_disclosure"] == disclosure  # the end-of-call report's


async def test_a_first_message_that_discloses_is_said_once_as_it_is(tmp_path: Path) -> None:
    async with running_freeswitch_service(tmp_path, operator_requires) as live:
        record = await call_and_end(live, DISCLOSING)
        assert live.speech is not None
        assert TEXT not in live.speech.tts.texts
        assert " ".join(live.speech.tts.texts).count(DISCLOSING) == 1  # by its sentences
        assert said(record)[:1] == [DISCLOSING]
        assert record["ai_disclosure"]["method"] == "first_message"
        assert record["ai_disclosure"]["said"] is True


async def test_a_consent_plan_s_message_comes_after_it_or_is_it(tmp_path: Path) -> None:
    async with running_freeswitch_service(tmp_path, operator_requires) as live:
        recorded = {"mode": "announce", "message": "This call is recorded."}
        record = await call_and_end(live, FIRST, consent_plan=recorded)
        assert said(record)[:3] == [TEXT, "This call is recorded.", FIRST]
        disclosing = {"mode": "announce", "message": "An AI assistant records this call."}
        record = await call_and_end(live, FIRST, consent_plan=disclosing)
        assert said(record)[:2] == ["An AI assistant records this call.", FIRST]
        assert record["ai_disclosure"]["method"] == "first_message"


async def test_an_organization_requires_it_where_the_operator_does_not(tmp_path: Path) -> None:
    async with running_freeswitch_service(tmp_path, operator_leaves_it) as live:
        plain = await call_and_end_plain(live)
        assert plain["ai_disclosure"] is None
        assert said(plain)[:1] == [FIRST]
        org = await patch_organization(live, {"ai_disclosure_required": True})
        assert (org["ai_disclosure_required"], org["ai_disclosure_required_by_operator"]) == (
            True,
            False,
        )
        record = await call_and_end(live, FIRST)
        assert said(record)[:2] == [TEXT, FIRST]
        assert record["ai_disclosure"]["required_by"] == "organization"


async def call_and_end_plain(live: UserPathService) -> dict[str, Any]:
    """A call without a requirement: its record once ended (no disclosure to wait for)."""
    status, body = await live.post(
        "/calls/outbound", {"destination": DESTINATION, "assistant": {"first_message": FIRST}}
    )
    assert status == 200, body
    call_id = body["call_id"]
    await live.wait_status(call_id, ("in-progress",))
    speech = live.speech
    assert speech is not None
    await eventually(lambda: FIRST in speech.tts.texts, 10.0)
    await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
    await live.wait_status(call_id, TERMINAL)
    await eventually(lambda: _messages_stored(live, call_id), 10.0)
    return await live.call(call_id)


async def _messages_stored(live: UserPathService, call_id: str) -> bool:
    return bool((await live.call(call_id))["messages"])


async def test_a_refused_inbound_call_says_it_before_the_refusal(tmp_path: Path) -> None:
    closed = "We are closed today. Goodbye."
    refusal = {"assistant-request": Answer({"error": closed})}
    async with ToolServer(generate_secret(), refusal) as server:

        def configure(settings: Settings) -> None:
            operator_requires(settings)
            settings.egress.allow_loopback = True
            settings.webhooks.endpoints = [server.endpoint("assistant-request")]

        async with running_freeswitch_service(tmp_path, configure) as live:
            resp = await live.client.patch(
                f"/assistants/{SUPPORT_ID}",
                json={"assistant_request": {"timeout_seconds": 2}},
                headers=live.auth(),
            )
            assert resp.status == 200, await resp.text()
            live.far_end.fake.inbound_call(ACME_NUMBERS[0], "+31612345678")
            call_id = (await server.wait_request())["call_id"]

            async def recorded() -> bool:
                status, body = await live.get(f"/calls/{call_id}")
                return status == 200 and body["ai_disclosure"] is not None

            await eventually(recorded, 10.0)
            record = await live.call(call_id)
            assert (record["status"], record["end_reason"]) == ("ended", "refused")
            assert said(record) == [f"{TEXT} {closed}"]
            assert record["ai_disclosure"]["method"] == "spoken"


async def test_a_squad_says_it_before_its_first_member(tmp_path: Path) -> None:
    async with running_freeswitch_service(tmp_path, operator_requires) as live:
        speech = live.speech
        assert speech is not None
        members = [
            {
                "name": "receptionist",
                "assistant": {"first_message": FIRST},
                "destinations": [{"member": "billing", "description": "Invoices."}],
            },
            {"name": "billing", "assistant": {"system_prompt": "You answer about invoices."}},
        ]
        status, body = await live.post(
            "/calls/outbound", {"destination": DESTINATION, "squad": {"members": members}}
        )
        assert status == 200, body
        call_id = body["call_id"]
        await eventually(lambda: FIRST in speech.tts.texts, 10.0)
        assert speech.tts.texts[:2] == [TEXT, FIRST]
        await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
        await live.wait_status(call_id, TERMINAL)
        await eventually(lambda: _stored(live, call_id), 10.0)
        record = await live.call(call_id)
        assert said(record)[:2] == [TEXT, FIRST]
        assert record["ai_disclosure"]["said"] is True
