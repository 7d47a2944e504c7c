"""An organization's SIP domain on the lab FreeSWITCH: the carrier calls Acme's number with a
Request-URI naming Acme's sip domain (answered, Acme's call), then naming Globex's (rejected
at the PBX, no call stored): voicedock reads the parked call's sip_req_host."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fakes.world import ACME, ACME_NUMBERS, GLOBEX, org_id
from freeswitch_lab.lab_service import LabService, ToneTts
from pbx.freeswitch.live_service import TERMINAL, until
from voicedock.domain.domains import DomainKind
from voicedock.organizations.domains import insert_new_domain, new_domain
from voicedock_lab.freeswitch import LabError

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(60)]

CALLER = "+31623731537"


async def nothing(_tx: object, _domain_id: str) -> None:
    """No audit event."""


async def test_a_sip_domain_reaches_only_its_organizations_numbers(live: LabService) -> None:
    store = live.service.store
    for org, host in ((ACME, "sip.acme.example"), (GLOBEX, "sip.globex.example")):
        domain = new_domain(org_id(org), host, DomainKind.SIP, verified=True)
        await insert_new_domain(store, domain, nothing)
    live.speech.tts = ToneTts(8000, ms_per_char=400)

    async def listed() -> list[dict[str, Any]]:
        resp = await live.client.get("/calls", headers=live.auth())
        return [c for c in (await resp.json())["calls"] if c["caller_phone"] == CALLER]

    with pytest.raises(LabError):
        await asyncio.to_thread(
            live.lab.originate_inbound, ACME_NUMBERS[0], caller=CALLER, domain="sip.globex.example"
        )
    assert await listed() == []

    leg = await asyncio.to_thread(
        live.lab.originate_inbound, ACME_NUMBERS[0], caller=CALLER, domain="sip.acme.example"
    )

    async def in_progress() -> bool:
        return any(c["status"] == "in-progress" for c in await listed())

    await until(in_progress, within=10)
    (call,) = await listed()
    channel = await live.channel_of(str(call["id"]))
    assert await live.getvar(channel, "sip_req_host") == "sip.acme.example"
    await live.fs.esl.api(f"uuid_kill {leg}")
    ended = await live.wait_status(str(call["id"]), TERMINAL)
    assert ended["status"] == "ended"
