"""Billing through the real app and a FakePbx: each organization's calls priced by its own
rate card (or the default) as they end, the ``cost`` on GET /calls/{id}, the list and the
signed end-of-call report; the month's statement (JSON, CSV, PDF) whose totals are the sum of
the calls' costs; the monthly spending limit warned by a signed ``spend-threshold`` webhook
once per threshold, then refusing new calls 402."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.conftest import Api, serving
from api.contract import conforms
from api.test_campaigns_api import campaign, campaign_body, create, end_all, eventually
from api.test_per_call_api import moment, until_status
from api.test_scheduled_calls_api import scheduled_while_down
from fakes.pbx import FakePbx
from fakes.world import ACME, DESTINATION, GLOBEX, GLOBEX_ASSISTANT_ID, SUPPORT_ID, make_settings
from voicedock.api.api_keys import issue_api_key
from voicedock.api.app import create_app
from voicedock.domain.records import utcnow
from voicedock.organizations.billing import set_rate_card, set_spend_limit
from voicedock.service import Service
from voicedock.store import open_store
from webhooks.receiver import Receiver, wait_until

pytestmark = pytest.mark.unit

ACME_CARD = {
    "currency": "EUR",
    "minimum_charge": "0.50",
    "rates": [
        {"per_minute": "0.02"},
        {"direction": "outbound", "country": "NL", "number_type": "mobile", "per_minute": "0.10"},
    ],
}
DEFAULT_CARD = {"currency": "USD", "minimum_charge": "0.20", "rates": [{"per_minute": "0.01"}]}


@dataclass
class Billing:
    client: TestClient[Any, Any]
    pbx: FakePbx
    service: Service
    keys: dict[str, str]

    def auth(self, org: str = ACME) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[org]}"}

    async def call(self, org: str = ACME) -> str:
        assistant = SUPPORT_ID if org == ACME else GLOBEX_ASSISTANT_ID
        placed = await self.client.post(
            "/calls/outbound",
            json={"destination": DESTINATION, "assistant_id": assistant},
            headers=self.auth(org),
        )
        assert placed.status == 200, await placed.text()
        call_id = str((await placed.json())["call_id"])
        await self.pbx.answer(call_id)
        await self.pbx.hang_up_remote(call_id)
        return call_id

    async def get(self, path: str, org: str = ACME) -> Any:
        response = await self.client.get(path, headers=self.auth(org))
        assert response.status == 200, await response.text()
        return await response.json()


@pytest.fixture
async def billing(tmp_path: Path) -> AsyncIterator[Billing]:
    settings = make_settings(f"sqlite:///{tmp_path / 'api.db'}")
    settings.egress.allow_loopback = True
    settings.webhooks.poll_interval_ms = 50
    pbx = FakePbx()
    services: list[Service] = []

    async def factory() -> Service:
        services.append(await Service.open(settings, pbx=pbx))
        return services[0]

    client: TestClient[Any, Any] = TestClient(
        TestServer(create_app(settings, factory), host="127.0.0.1", port=0)
    )
    await client.start_server()
    try:
        store = services[0].store
        keys = {org: (await issue_api_key(store, org))[0] for org in (ACME, GLOBEX)}
        yield Billing(client, pbx, services[0], keys)
    finally:
        await client.close()


async def test_calls_are_priced_by_their_organizations_card_and_stated(billing: Billing) -> None:
    missing = await billing.client.get("/billing/rate-card", headers=billing.auth())
    assert missing.status == 404
    unpriced = await billing.call()
    assert (await billing.get(f"/calls/{unpriced}"))["cost"] is None  # no rate card: no cost
    store = billing.service.store
    await set_rate_card(store, ACME, ACME_CARD, utcnow())
    await set_rate_card(store, None, DEFAULT_CARD, utcnow())
    card = await billing.get("/billing/rate-card")
    conforms(card, "RateCardReply")
    assert (card["scope"], card["version"], card["terms"]["currency"]) == ("organization", 1, "EUR")
    assert (await billing.get("/billing/rate-card", GLOBEX))["scope"] == "default"

    acme_calls = [await billing.call(), await billing.call()]
    globex_call = await billing.call(GLOBEX)
    detail = await billing.get(f"/calls/{acme_calls[0]}")
    conforms(detail, "Call")
    cost = detail["cost"]
    # the NL mobile rate: 0 or 60 s billed at 0.10 / min, at least the minimum 0.50
    assert (cost["amount"], cost["currency"], cost["per_minute"]) == ("0.50", "EUR", "0.10")
    assert (cost["country"], cost["number_type"], cost["rate_card_version"]) == (
        "NL",
        "mobile",
        1,
    )
    assert (await billing.get(f"/calls/{globex_call}", GLOBEX))["cost"]["amount"] == "0.20"
    listed = (await billing.get("/calls?limit=100"))["calls"]
    rated = [c for c in listed if c["cost"] is not None]
    assert sorted(c["id"] for c in rated) == sorted(acme_calls)  # the first call: no card

    statement = await billing.get("/billing/statements")
    conforms(statement, "Statement")
    [total] = statement["totals"]
    recomputed = sum(Decimal(c["cost"]["amount"]) for c in rated)
    assert Decimal(total["amount"]) == recomputed == Decimal("1.00")
    assert (total["currency"], total["calls"]) == ("EUR", 2)
    [line] = statement["lines"]
    assert (line["direction"], line["country"], line["number_type"]) == ("outbound", "NL", "mobile")
    assert line["amount"] == "1.00"
    theirs = await billing.get("/billing/statements", GLOBEX)
    assert [(t["currency"], t["amount"]) for t in theirs["totals"]] == [("USD", "0.20")]

    month = statement["month"]
    as_csv = await billing.client.get(
        f"/billing/statements?month={month}&format=csv", headers=billing.auth()
    )
    assert as_csv.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await as_csv.text())))
    assert [(r["country"], r["calls"], r["amount"]) for r in rows] == [("NL", "2", "1.00")]
    as_pdf = await billing.client.get("/billing/statements?format=pdf", headers=billing.auth())
    assert as_pdf.content_type == "application/pdf"
    document = await as_pdf.read()
    assert document.startswith(b"%PDF-1.4")
    assert document.rstrip().endswith(b"%%EOF")
    assert b"1.00 EUR" in document
    assert (await billing.get("/billing/statements?month=2001-01"))["lines"] == []
    for bad, title in (
        ("month=2026-13", "Bad request"),
        ("format=xml", "Bad request"),
        ("other=1", "Bad request"),
        ("month=0000-01", "Invalid month"),  # of the form the schema states, still no month
    ):
        response = await billing.client.get(f"/billing/statements?{bad}", headers=billing.auth())
        assert response.status == 400, bad
        assert (await response.json())["error"] == title, bad


async def test_the_spending_limit_warns_by_webhook_then_refuses_calls(billing: Billing) -> None:
    store = billing.service.store
    await set_rate_card(store, ACME, ACME_CARD, utcnow())
    await set_spend_limit(store, ACME, "1.00", 50, utcnow())
    receiver = Receiver(secret="")
    await receiver.start()
    try:
        created = await billing.client.post(
            "/webhooks",
            json={"url": receiver.url, "event_types": ["spend-threshold", "end-of-call-report"]},
            headers=billing.auth(),
        )
        assert created.status == 201, await created.text()
        receiver.secret = (await created.json())["secret"]
        await billing.call()  # 0.50: half the limit, the warning
        await wait_until(lambda: len(receiver.accepted) == 2)
        await billing.call()  # 1.00: the limit
        await wait_until(lambda: len(receiver.accepted) == 4)
        refused = await billing.client.post(
            "/calls/outbound",
            json={"destination": DESTINATION, "assistant_id": SUPPORT_ID},
            headers=billing.auth(),
        )
        assert refused.status == 402
        body = await refused.json()
        assert body["error"] == "Spending limit reached"
        assert "1.00 EUR" in body["message"]
        assert len(billing.pbx.originated) == 2
        await billing.call(GLOBEX)  # another organization calls on
        assert len(billing.pbx.originated) == 3
    finally:
        await receiver.stop()
    events = [json.loads(r.body) for r in receiver.requests if r.msg_id in receiver.accepted]
    assert len(events) == 4  # each signed, each once
    alerts = [e for e in events if e["type"] == "spend-threshold"]
    assert [a["data"]["threshold_percent"] for a in alerts] == [50, 100]
    assert alerts[0]["data"] == {
        "month": alerts[0]["data"]["month"],
        "threshold_percent": 50,
        "spent": "0.50",
        "limit": "1.00",
        "currency": "EUR",
        "limit_reached": False,
    }
    assert alerts[1]["data"]["limit_reached"] is True
    reports = [e for e in events if e["type"] == "end-of-call-report"]
    assert [r["data"]["cost"]["amount"] for r in reports] == ["0.50", "0.50"]


@pytest.fixture
async def one_channel(database_url: str) -> AsyncIterator[Api]:
    """The API with the carrier trunk taking one call at a time."""
    settings = make_settings(database_url)
    settings.trunks[0].max_channels = 1
    async with serving(settings) as running:
        yield running


async def test_a_campaigns_contacts_past_the_limit_are_done_saying_why(one_channel: Api) -> None:
    api = one_channel
    store = api.service.store
    await set_rate_card(store, ACME, ACME_CARD, utcnow())
    await set_spend_limit(store, ACME, "0.50", None, utcnow())
    created = await create(api, campaign_body(3))

    async def dialed() -> bool:
        return len(api.pbx.originated) == 1

    async def finished() -> bool:
        found = await store.get_campaign(None, created["id"])
        return found is not None and found.status.value == "finished"

    await eventually(dialed)
    await end_all(api)  # answered and ended: 0.50, the limit
    await eventually(finished)
    assert len(api.pbx.originated) == 1
    body = await campaign(api.client, api, created["id"])
    assert body["progress"]["by_outcome"] == {"answered": 1, "spend-limit-reached": 2}


async def test_a_scheduled_call_past_the_limit_ends_never_dialed(database_url: str) -> None:
    settings = make_settings(database_url)
    call_id = await scheduled_while_down(settings, scheduled_at=moment(0.5))
    store = await open_store(database_url)
    try:
        await set_rate_card(store, ACME, ACME_CARD, utcnow())
        await set_spend_limit(store, ACME, "0", None, utcnow())  # no spending at all
    finally:
        await store.aclose()
    async with serving(settings) as api:
        call = await until_status(api, call_id, "ended")
        assert call["end_reason"] == "spend-limit-reached"
        assert api.pbx.originated == []
