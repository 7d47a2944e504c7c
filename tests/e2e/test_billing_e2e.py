"""Billing where the operator and its clients stand: two organizations on the lab Asterisk, each
given its own console domain with ``voicedock organizations domains add`` and its own rate card
with ``voicedock billing rate-cards set``; a call of each placed through REST on its own host is
priced by its card in its signed end-of-call report and on GET /calls/{id}, and is on
its organization's statement, whose totals equal a recomputation from GET /calls; an
organization given a monthly spending limit with ``voicedock billing set-limit`` is warned by
its signed ``spend-threshold`` webhook, then refused its next call (402)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import LiveService, serve, service_settings
from fakes.world import GLOBEX, GLOBEX_ASSISTANT_ID, SUPPORT_ID
from voicedock.api.api_keys import issue_api_key
from voicedock.cli import main
from voicedock_lab.server import LabAsterisk
from webhooks.receiver import Receiver, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

SILENT = "+31612345675"  # the lab's silent party (a Dutch mobile number)
HOSTS = {"acme": "voice.acme.example", GLOBEX: "portal.globex.example"}
ACME_CARD = """
currency = "EUR"
increment = "1/1"
minimum_charge = "0.50"

[[rates]]
per_minute = "0.01"

[[rates]]
direction = "outbound"
country = "NL"
number_type = "mobile"
per_minute = "0.60"
"""
GLOBEX_CARD = """
currency = "USD"
increment = "6/6"

[[rates]]
per_minute = "0.30"
"""


@pytest.fixture
async def live(lab: LabAsterisk, tmp_path: Path) -> AsyncIterator[LiveService]:
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.egress.allow_loopback = True  # the webhook receiver on 127.0.0.1
    settings.webhooks.poll_interval_ms = 50
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


async def voicedock(tmp_path: Path, *args: str) -> None:
    """``voicedock ARGS`` on the service's database, as the operator runs it."""
    config = tmp_path / "voicedock.toml"
    database = f"sqlite:///{tmp_path / 'e2e.db'}"
    config.write_text(f'[database]\nurl = "{database}"\n[pbx]\nkind = "none"\n', encoding="utf-8")
    assert await asyncio.to_thread(main, [*args[:-1], "--config", str(config), args[-1]]) == 0


async def _call(live: LiveService, key: str, assistant_id: str, host: str) -> str:
    """A call to the silent party placed on the organization's host, answered, held a moment,
    ended through REST."""
    headers = {"Authorization": f"Bearer {key}", "Host": host}
    placed = await live.client.post(
        "/calls/outbound",
        json={"destination": SILENT, "assistant_id": assistant_id},
        headers=headers,
    )
    assert placed.status == 200, await placed.text()
    call_id = str((await placed.json())["call_id"])
    await _until(live, key, call_id, lambda c: c["status"] == "in-progress")
    await asyncio.sleep(2)
    ended = await live.client.post(
        f"/calls/{call_id}/control", json={"type": "end-call"}, headers=headers
    )
    assert ended.status == 200, await ended.text()
    return call_id


async def _until(live: LiveService, key: str, call_id: str, ready: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {key}"}
    async with asyncio.timeout(30):
        while True:
            seen = await (await live.client.get(f"/calls/{call_id}", headers=headers)).json()
            if ready(seen):
                return seen
            await asyncio.sleep(0.1)


def _recomputed(call: dict[str, Any], per_minute: str, first: int, then: int, least: str) -> str:
    """The call's amount from what GET /calls/{id} shows, by the card's rules."""
    started = datetime.fromisoformat(call["started_at"].replace("Z", "+00:00"))
    ended = datetime.fromisoformat(call["ended_at"].replace("Z", "+00:00"))
    seconds = (ended - started).total_seconds()
    billed = (
        first if seconds <= first else first + math.ceil(round(seconds - first, 3) / then) * then
    )
    assert call["cost"]["billed_seconds"] == billed, (call["cost"], seconds)
    amount = max(Decimal(billed) / 60 * Decimal(per_minute), Decimal(least))
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


async def test_two_organizations_priced_stated_and_limited(
    live: LiveService, tmp_path: Path
) -> None:
    for org, card in (("acme", ACME_CARD), (GLOBEX, GLOBEX_CARD)):
        await voicedock(tmp_path, "organizations", "domains", "add", org, HOSTS[org])
        (tmp_path / f"{org}.toml").write_text(card, encoding="utf-8")
        await voicedock(
            tmp_path,
            "billing",
            "rate-cards",
            "set",
            "--organization",
            org,
            str(tmp_path / f"{org}.toml"),
        )
    await voicedock(
        tmp_path, "billing", "set-limit", "--monthly-spend", "0.80", "--spend-warning", "50", "acme"
    )
    globex_key, _ = await issue_api_key(live.service.store, GLOBEX)

    receiver = Receiver(secret="")
    await receiver.start()
    try:
        created = await live.client.post(
            "/webhooks",
            json={"url": receiver.url, "event_types": ["end-of-call-report", "spend-threshold"]},
            headers=live.auth(),
        )
        assert created.status == 201, await created.text()
        receiver.secret = (await created.json())["secret"]

        acme_host, globex_host = HOSTS["acme"], HOSTS[GLOBEX]
        first = await _call(live, live.key, SUPPORT_ID, acme_host)  # 0.50 EUR: 62 % of the limit
        await wait_until(lambda: len(receiver.accepted) == 2, timeout=30)
        second = await _call(live, live.key, SUPPORT_ID, acme_host)  # 1.00 EUR: past the limit
        await wait_until(lambda: len(receiver.accepted) == 4, timeout=30)
        theirs = await _call(live, globex_key, GLOBEX_ASSISTANT_ID, globex_host)
        # each host takes only its organization's key
        wrong_host = {"Authorization": f"Bearer {globex_key}", "Host": acme_host}
        assert (await live.client.get("/billing/statements", headers=wrong_host)).status == 403

        refused = await live.client.post(
            "/calls/outbound",
            json={"destination": SILENT, "assistant_id": SUPPORT_ID},
            headers=live.auth(),
        )
        assert refused.status == 402
        body = await refused.json()
        assert body["error"] == "Spending limit reached"
        assert "0.80 EUR" in body["message"]
    finally:
        await receiver.stop()

    events = [json.loads(r.body) for r in receiver.requests if r.msg_id in receiver.accepted]
    kinds = [e["type"] for e in events]
    # the warning came with the first call's report, before the second call was placed
    assert sorted(kinds[:2]) == ["end-of-call-report", "spend-threshold"]
    alerts = [e["data"] for e in events if e["type"] == "spend-threshold"]
    assert [(a["threshold_percent"], a["spent"], a["limit_reached"]) for a in alerts] == [
        (50, "0.50", False),
        (100, "1.00", True),
    ]
    reports = {e["call_id"]: e["data"]["cost"] for e in events if e["type"] == "end-of-call-report"}

    acme_calls = [await _until(live, live.key, c, lambda c: c["cost"]) for c in (first, second)]
    for call in acme_calls:
        cost = call["cost"]
        assert reports[call["id"]] == cost  # the end-of-call report's cost is the call's
        assert (cost["currency"], cost["country"], cost["number_type"]) == ("EUR", "NL", "mobile")
        assert cost["per_minute"] == "0.60"
        assert cost["amount"] == _recomputed(call, "0.60", 1, 1, "0.50")
    globex_call = await _until(live, globex_key, theirs, lambda c: c["cost"])
    assert globex_call["cost"]["currency"] == "USD"
    assert globex_call["cost"]["amount"] == _recomputed(globex_call, "0.30", 6, 6, "0")

    statement = await (await live.client.get("/billing/statements", headers=live.auth())).json()
    listed = await (await live.client.get("/calls", headers=live.auth())).json()
    from_calls = sum(Decimal(c["cost"]["amount"]) for c in listed["calls"] if c["cost"])
    [total] = statement["totals"]
    assert (total["currency"], total["calls"]) == ("EUR", 2)
    assert Decimal(total["amount"]) == from_calls == Decimal("1.00")
    assert statement["spending_limit"] == "0.80"
    headers = {"Authorization": f"Bearer {globex_key}", "Host": HOSTS[GLOBEX]}
    their_statement = await (await live.client.get("/billing/statements", headers=headers)).json()
    assert [(t["currency"], t["calls"], t["amount"]) for t in their_statement["totals"]] == [
        ("USD", 1, globex_call["cost"]["amount"])
    ]
    pdf = await live.client.get("/billing/statements?format=pdf", headers=live.auth())
    assert (await pdf.read()).startswith(b"%PDF-1.4")
