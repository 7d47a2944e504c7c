"""Two organizations on their own hosts, as a reseller sets them up: the operator gives each a
console domain and its branding with ``voicedock organizations``, on the service running on
the lab Asterisk. Each host's console shows its organization's name (and Acme's logo) to
plain HTTP and in a real headless Chromium (the hosts mapped to loopback), signs in only its
organization's keys, and takes only its keys through the API: Acme's host places Acme's call
through the lab Asterisk and refuses Globex's before it reaches the PBX; ``GET /domains``
lists only the caller's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from e2e.browser import headless_chromium, screenshot_path
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_calls_e2e import channel_ids
from e2e.test_console_browser_e2e import refused_sign_in, signed_in, wait_for
from fakes.world import ACME_NUMBERS, GLOBEX, GLOBEX_ASSISTANT_ID, SUPPORT_ID
from pbx.lab_calls import ANSWERS
from voicedock.api.api_keys import issue_api_key
from voicedock.cli import main
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

ACME_HOST = "voice.acme.example"
GLOBEX_HOST = "portal.globex.example"
# A 1x1 PNG: the logo the console shows on Acme's host.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5f8"
    "d2e10000000049454e44ae426082"
)
TERMINAL = ("ended", "failed")


async def operator(config: Path, *command: str) -> None:
    """``voicedock <command> --config <config>``, as the operator runs it (its own event loop,
    in a thread: the service under test keeps serving)."""
    verb_at = 3 if command[:2] == ("organizations", "domains") else 2
    argv = [*command[:verb_at], "--config", str(config), *command[verb_at:]]
    assert await asyncio.to_thread(main, argv) == 0, argv


@pytest.fixture
async def resold(lab: LabAsterisk, tmp_path: Path) -> AsyncIterator[tuple[LiveService, str]]:
    """The service on the lab Asterisk with Acme's and Globex's domains and branding, set by
    the operator's commands on its database; Acme's key (the service's) and Globex's."""
    database = tmp_path / "e2e.db"
    running = await serve(service_settings(lab, database, "ari"))
    try:
        globex_key, _ = await issue_api_key(running.service.store, GLOBEX)
        config = tmp_path / "voicedock.toml"
        config.write_text(f'[database]\nurl = "sqlite:///{database}"\n', encoding="utf-8")
        logo = tmp_path / "acme.png"
        logo.write_bytes(PNG)
        await operator(config, "organizations", "domains", "add", "acme", ACME_HOST)
        await operator(
            config, "organizations", "domains", "add", "acme", "sip.acme.example", "--kind", "sip"
        )
        await operator(config, "organizations", "domains", "add", GLOBEX, GLOBEX_HOST)
        await operator(
            config, "organizations", "domains", "add", GLOBEX, "sip.globex.example", "--kind", "sip"
        )
        await operator(
            config, "organizations", "set-branding", "acme", "--name", "Acme Voice", "--logo",
            str(logo),
        )  # fmt: skip
        await operator(config, "organizations", "set-branding", GLOBEX, "--name", "Globex Calls")
        yield running, globex_key
    finally:
        await running.client.close()


def on(host: str, key: str | None = None) -> dict[str, str]:
    headers = {"Host": host}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return headers


async def test_each_organizations_host_shows_it_and_takes_only_its_keys(
    resold: tuple[LiveService, str],
) -> None:
    live, globex_key = resold
    acme_key, client = live.key, live.client
    for host, name, other in (
        (ACME_HOST, "Acme Voice", "Globex"),
        (GLOBEX_HOST, "Globex Calls", "Acme"),
    ):
        page = await (await client.get("/console", headers=on(host))).text()
        assert f"<title>{name} console</title>" in page
        assert other not in page
    operator_page = await (await client.get("/console")).text()
    assert "<title>voicedock console</title>" in operator_page
    logo = await client.get("/console/logo", headers=on(ACME_HOST))
    assert logo.status == 200
    assert await logo.read() == PNG

    # The console's sign-in and the API on each host: only its organization's keys.
    for host, mine, theirs in (
        (ACME_HOST, acme_key, globex_key),
        (GLOBEX_HOST, globex_key, acme_key),
    ):
        refused = await client.post("/console/session", json={"api_key": theirs}, headers=on(host))
        assert refused.status == 403
        assert (await refused.json())["message"] == f"this API key is not valid on {host}"
        signed = await client.post("/console/session", json={"api_key": mine}, headers=on(host))
        assert signed.status == 200
        assert (await client.get("/calls", headers=on(host, theirs))).status == 403

    # GET /domains: each organization's own, on its host or the operator's.
    acme = await (await client.get("/domains", headers=on(ACME_HOST, acme_key))).json()
    assert [(d["host"], d["kind"]) for d in acme["domains"]] == [
        (ACME_HOST, "console"),
        ("sip.acme.example", "sip"),
    ]
    globex = await (await client.get("/domains", headers=on("127.0.0.1", globex_key))).json()
    assert [d["host"] for d in globex["domains"]] == [GLOBEX_HOST, "sip.globex.example"]

    # A call: Acme's key places it on Acme's host, through the lab Asterisk; Globex's key on
    # Acme's host never reaches the PBX.
    before = await channel_ids(live)
    body = {"destination": ANSWERS, "assistant_id": GLOBEX_ASSISTANT_ID}
    refused = await client.post("/calls/outbound", json=body, headers=on(ACME_HOST, globex_key))
    assert refused.status == 403
    await asyncio.sleep(0.5)
    assert await channel_ids(live) == before
    body = {"destination": ANSWERS, "assistant_id": SUPPORT_ID}
    placed = await client.post("/calls/outbound", json=body, headers=on(ACME_HOST, acme_key))
    assert placed.status == 200, await placed.text()
    call_id = (await placed.json())["call_id"]
    answered = await live.wait_status(call_id, ("in-progress", *TERMINAL), within=10)
    assert answered["status"] == "in-progress"
    assert call_id in await channel_ids(live)
    ended = await client.post(
        f"/calls/{call_id}/control", json={"type": "end-call"}, headers=on(ACME_HOST, acme_key)
    )
    assert ended.status == 200
    assert (await live.wait_status(call_id, TERMINAL, within=10))["status"] == "ended"


async def test_a_browser_on_each_host_sees_its_organization(
    resold: tuple[LiveService, str],
) -> None:
    live, globex_key = resold
    port = live.client.server.port
    rules = f"--host-resolver-rules=MAP {ACME_HOST} 127.0.0.1, MAP {GLOBEX_HOST} 127.0.0.1"

    def browse() -> None:
        from selenium.webdriver.common.by import By

        with headless_chromium([rules]) as driver:
            acme = f"http://{ACME_HOST}:{port}"
            driver.get(f"{acme}/console")
            brand = wait_for(driver, lambda d: d.find_element(By.ID, "brand"), "the brand")
            assert brand.text == "Acme Voice"
            assert driver.title == "Acme Voice console"
            image: Any = brand.find_element(By.TAG_NAME, "img")
            wait_for(
                driver,
                lambda d: d.execute_script("return arguments[0].naturalWidth", image) == 1,
                "the logo loaded",
            )
            message = refused_sign_in(driver, acme, globex_key)
            assert message == f"this API key is not valid on {ACME_HOST}"
            signed_in(driver, acme, live.key)
            driver.save_screenshot(str(screenshot_path("console-acme-domain.png")))
            globex = f"http://{GLOBEX_HOST}:{port}"
            driver.get(f"{globex}/console")
            brand = wait_for(driver, lambda d: d.find_element(By.ID, "brand"), "the brand")
            assert brand.text == "Globex Calls"
            assert brand.find_elements(By.TAG_NAME, "img") == []
            # Acme's session is Acme's host's alone: on Globex's the console asks to sign in.
            wait_for(
                driver,
                lambda d: d.find_element(By.ID, "sign-in-view").is_displayed(),
                "the sign-in form on Globex's host",
            )
            signed_in(driver, globex, globex_key)

    await asyncio.to_thread(browse)


async def test_an_organizations_sip_domain_reaches_only_its_numbers(
    resold: tuple[LiveService, str], lab: LabAsterisk
) -> None:
    """The lab carrier calls Acme's number with a Request-URI naming Acme's SIP domain: the
    call is Acme's and answered; naming Globex's SIP domain, the same number is refused at the
    PBX (the caller's channel hung up, no call stored)."""
    live, _ = resold

    async def acme_calls() -> list[dict[str, Any]]:
        resp = await live.client.get("/calls", headers=live.auth())
        return list((await resp.json())["calls"])

    refused = await asyncio.to_thread(
        lab.originate_inbound, ACME_NUMBERS[0], domain="sip.globex.example"
    )
    async with asyncio.timeout(10):
        while refused in await channel_ids(live):
            await asyncio.sleep(0.1)
    assert await acme_calls() == []

    caller = await asyncio.to_thread(
        lab.originate_inbound, ACME_NUMBERS[0], domain="sip.acme.example"
    )
    async with asyncio.timeout(10):
        while not (calls := await acme_calls()) or calls[0]["status"] != "in-progress":
            await asyncio.sleep(0.1)
    (call,) = calls
    assert call["caller_phone"] == "+31612345678"
    assert call["assistant_phone"] == ACME_NUMBERS[0]
    await live.pbx.ari.hangup_channel(caller)
    assert (await live.wait_status(call["id"], TERMINAL, within=10))["status"] == "ended"
