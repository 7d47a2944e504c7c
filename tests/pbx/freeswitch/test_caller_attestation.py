"""An inbound caller's STIR/SHAKEN attestation kept, through REST and webhooks, on the
FreeSWITCH fake: the park event carries the INVITE's ``Identity`` and ``P-Asserted-Identity``
as sofia passes them (``sip_h_Identity``, ``sip_h_P-Asserted-Identity``); the organization's
server is asked for the assistant with the attestation (``assistant-request``), the call
record holds it (``GET /calls/{id}``), and so does the end-of-call report."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.stir_shaken import ORIGID, asserted_identity, identity_header
from fakes.tool_server import Answer, ToolServer
from fakes.world import ACME_NUMBERS, SUPPORT_ID
from pbx.freeswitch.live_service import TERMINAL, running_freeswitch_service, until
from voicedock.config import Settings
from voicedock.domain.webhooks import generate_secret

pytestmark = pytest.mark.unit

SECRET = generate_secret()
CALLER = "+31612345678"
EVENTS = ("assistant-request", "end-of-call-report")  # what the server is sent
ATTESTATION = {"attest": "A", "origid": ORIGID, "verstat": "TN-Validation-Passed"}


async def test_the_callers_attestation_is_on_the_call_and_in_its_webhooks(
    tmp_path: Path,
) -> None:
    answer = Answer({"assistant_id": SUPPORT_ID})
    async with ToolServer(SECRET, {"assistant-request": answer}) as server:

        def hooks(settings: Settings) -> None:
            settings.egress.allow_loopback = True
            settings.webhooks.endpoints = [server.endpoint(*EVENTS)]

        async with running_freeswitch_service(tmp_path, hooks) as live:
            resp = await live.client.patch(
                f"/assistants/{SUPPORT_ID}",
                json={"assistant_request": {"timeout_seconds": 2}},
                headers=live.auth(),
            )
            assert resp.status == 200, await resp.text()
            variables = {
                "sip_h_Identity": identity_header("A"),
                "sip_h_P-Asserted-Identity": asserted_identity(CALLER),
            }
            channel = live.far_end.fake.inbound_call(ACME_NUMBERS[0], CALLER, variables)
            request = await server.wait_request()
            assert request["type"] == "assistant-request"
            assert request["data"]["caller_attestation"] == ATTESTATION
            call_id = request["call_id"]

            async def answered() -> bool:  # stored once the server answered
                status, body = await live.get(f"/calls/{call_id}")
                return status == 200 and body["status"] == "in-progress"

            await until(answered)
            assert (await live.call(call_id))["caller_attestation"] == ATTESTATION
            live.far_end.hang_up(channel)
            await live.wait_status(call_id, TERMINAL)
            report = await server.wait_request(2, timeout=15)
            assert report["type"] == "end-of-call-report"
            assert report["data"]["caller_attestation"] == ATTESTATION


async def test_a_caller_without_headers_has_none(tmp_path: Path) -> None:
    async with running_freeswitch_service(tmp_path) as live:
        live.far_end.fake.inbound_call(ACME_NUMBERS[0], CALLER)

        async def answered() -> list[str]:
            _, body = await live.get("/calls?status=in-progress")
            return [c["id"] for c in body["calls"]]

        await until(answered)
        (call_id,) = await answered()
        assert (await live.call(call_id))["caller_attestation"] is None
