"""An inbound caller's STIR/SHAKEN attestation on the lab Asterisk: the carrier's INVITE
carries ``Identity`` and ``P-Asserted-Identity`` (``LabAsterisk.originate_inbound`` adds them
with ``PJSIP_HEADER(add,…)``), voicedock reads them through ARI before offering the call, asks
the organization's server with them (``assistant-request``), and the call record
(``GET /calls/{id}``) and its end-of-call report hold them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from e2e.conftest import serve, service_settings
from e2e.test_calls_e2e import TERMINAL, until, wait_status
from fakes.stir_shaken import ORIGID, asserted_identity, identity_header
from fakes.tool_server import Answer, ToolServer
from fakes.world import ACME_NUMBERS, SUPPORT_ID
from voicedock.domain.webhooks import generate_secret
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.timeout(60)]

SECRET = generate_secret()
CALLER = "+31612345678"
EVENTS = ("assistant-request", "end-of-call-report")  # what the server is sent


async def test_the_carriers_attestation_is_kept_and_sent(lab: LabAsterisk, tmp_path: Path) -> None:
    answer = Answer({"assistant_id": SUPPORT_ID})
    async with ToolServer(SECRET, {"assistant-request": answer}) as server:
        settings = service_settings(lab, tmp_path / "attestation.db", "ari")
        settings.egress.allow_loopback = True
        settings.webhooks.endpoints = [server.endpoint(*EVENTS)]
        live = await serve(settings)
        try:
            resp = await live.client.patch(
                f"/assistants/{SUPPORT_ID}",
                json={"assistant_request": {"timeout_seconds": 2}},
                headers=live.auth(),
            )
            assert resp.status == 200, await resp.text()
            headers = [
                ("Identity", identity_header("B")),
                ("P-Asserted-Identity", asserted_identity(CALLER)),
            ]
            channel = await asyncio.to_thread(
                lab.originate_inbound, ACME_NUMBERS[0], caller=CALLER, headers=headers
            )
            expected = {"attest": "B", "origid": ORIGID, "verstat": "TN-Validation-Passed"}
            request = await server.wait_request()
            assert request["type"] == "assistant-request"
            assert request["data"]["caller_attestation"] == expected
            call_id = request["call_id"]

            async def answered() -> bool:
                resp = await live.client.get(f"/calls/{call_id}", headers=live.auth())
                return resp.status == 200 and (await resp.json())["status"] == "in-progress"

            await until(answered, 20)
            call = await live.call(call_id)
            assert call["caller_attestation"] == expected
            await live.pbx.ari.hangup_channel(channel)
            await wait_status(live, call_id, TERMINAL, within=15)
            report = await server.wait_request(2, timeout=20)
            assert report["type"] == "end-of-call-report"
            assert report["data"]["caller_attestation"] == expected
        finally:
            await live.client.close()
