"""Domains over REST: each organization lists only its own (paged by cursor, another's a 404);
proposing one is the operator's choice (403 by default), pending until its TXT record is seen
through the operator's resolver (a DNS server on loopback); on an organization's console
domain the console shows its branding and only its keys are taken, through the API and at
the console's sign-in (403); every other host is the operator's console as before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from api.conftest import Api, serving
from api.contract import conforms
from fakes.dns_server import txt_server
from fakes.world import ACME, GLOBEX, make_settings, org_id
from voicedock.domain.domains import Domain, DomainKind
from voicedock.organizations.domains import (
    branding,
    insert_new_domain,
    new_domain,
    sip_domain_admits,
)

pytestmark = pytest.mark.unit

ACME_HOST = "voice.acme.example"
GLOBEX_HOST = "voice.globex.example"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def add_domain(
    api: Api, org: str, host: str, kind: DomainKind = DomainKind.CONSOLE
) -> Domain:
    """A domain the operator gave ``org`` (verified), as ``voicedock organizations domains
    add`` stores it."""
    domain = new_domain(org_id(org), host, kind, verified=True)
    await insert_new_domain(api.service.store, domain, nothing)
    return domain


async def nothing(_tx: object, _domain_id: str) -> None:
    """No audit event."""


@pytest.fixture
async def proposing(database_url: str) -> AsyncIterator[Api]:
    """The API where organizations may propose domains, verified by DNS."""
    settings = make_settings(database_url)
    settings.domains.tenant_proposals = True
    settings.domains.dns_verification = True
    settings.domains.resolver = "127.0.0.1"
    async with serving(settings) as running:
        yield running


async def test_each_organization_lists_and_reads_only_its_own_domains(api: Api) -> None:
    acme = [await add_domain(api, ACME, f"d{i}.acme.example") for i in range(3)]
    theirs = await add_domain(api, GLOBEX, GLOBEX_HOST, DomainKind.SIP)
    resp = await api.client.get("/domains", params={"limit": "2"}, headers=api.auth())
    assert resp.status == 200, await resp.text()
    first = await resp.json()
    conforms(first, "DomainList")
    assert [d["host"] for d in first["domains"]] == ["d0.acme.example", "d1.acme.example"]
    assert first["pagination"]["total"] == 3
    assert first["domains"][0]["status"] == "verified"
    assert first["domains"][0]["verification"]["name"] == "_voicedock.d0.acme.example"
    params = {"limit": "2", "cursor": first["next_cursor"]}
    rest = await (await api.client.get("/domains", params=params, headers=api.auth())).json()
    assert [d["host"] for d in rest["domains"]] == ["d2.acme.example"]
    assert rest["next_cursor"] is None
    one = await api.client.get(f"/domains/{acme[1].id}", headers=api.auth())
    got = await one.json()
    conforms(got, "Domain")
    assert got["host"] == "d1.acme.example"
    assert got["kind"] == "console"
    other = await api.client.get(f"/domains/{theirs.id}", headers=api.auth())
    assert other.status == 404
    globex = await api.client.get("/domains", headers=api.auth(api.globex_key))
    listed = (await globex.json())["domains"]
    assert [(d["host"], d["kind"]) for d in listed] == [(GLOBEX_HOST, "sip")]


async def test_proposing_a_domain_is_refused_unless_the_operator_allows_it(api: Api) -> None:
    resp = await api.client.post("/domains", json={"host": ACME_HOST}, headers=api.auth())
    assert resp.status == 403
    assert (await resp.json())["error"] == "Forbidden"
    listed = await (await api.client.get("/domains", headers=api.auth())).json()
    assert listed["domains"] == []


async def test_a_proposed_domain_is_verified_by_its_txt_record(proposing: Api) -> None:
    api = proposing
    h = api.auth()
    async with txt_server() as dns:
        api.service.settings.domains.resolver_port = dns.port
        resp = await api.client.post("/domains", json={"host": "Voice.ACME.example."}, headers=h)
        assert resp.status == 201, await resp.text()
        proposed = await resp.json()
        conforms(proposed, "Domain")
        assert proposed["host"] == ACME_HOST
        assert proposed["status"] == "pending"
        record = proposed["verification"]
        assert record["type"] == "TXT"
        assert record["name"] == f"_voicedock.{ACME_HOST}"
        verify = f"/domains/{proposed['id']}/verify"
        missing = await api.client.post(verify, headers=h)
        assert missing.status == 409, await missing.text()
        assert dns.asked == [f"_voicedock.{ACME_HOST}"]
        dns.records[f"_voicedock.{ACME_HOST}"] = ["v=spf1 -all", "voicedock-verification=wrong"]
        assert (await api.client.post(verify, headers=h)).status == 409
        dns.records[f"_voicedock.{ACME_HOST}"] = ["v=spf1 -all", record["value"]]
        done = await api.client.post(verify, headers=h)
        assert done.status == 200, await done.text()
        body = await done.json()
        assert body["status"] == "verified"
        assert body["verified_at"] is not None
    # Verified: the organization no longer removes it (the operator does).
    assert (await api.client.delete(f"/domains/{proposed['id']}", headers=h)).status == 403


async def test_a_host_is_held_once_and_must_be_a_domain_name(proposing: Api) -> None:
    api = proposing
    await add_domain(api, GLOBEX, GLOBEX_HOST)
    taken = await api.client.post("/domains", json={"host": GLOBEX_HOST}, headers=api.auth())
    assert taken.status == 409
    refused = await taken.text()
    assert f"{GLOBEX_HOST} is not available" in refused
    assert GLOBEX not in refused.replace(GLOBEX_HOST, "")
    for host in ("127.0.0.1", "localhost", "exa mple.com", "-a.example", "a..example"):
        resp = await api.client.post("/domains", json={"host": host}, headers=api.auth())
        assert resp.status == 400, host
        assert (await resp.json())["error"] == "Invalid domain"
    idn = await api.client.post(
        "/domains", json={"host": "bücher.example", "kind": "sip"}, headers=api.auth()
    )
    assert idn.status == 201
    created = await idn.json()
    assert created["host"] == "xn--bcher-kva.example"
    assert created["kind"] == "sip"
    withdrawn = await api.client.delete(f"/domains/{created['id']}", headers=api.auth())
    assert withdrawn.status == 204
    assert (await api.client.get(f"/domains/{created['id']}", headers=api.auth())).status == 404


async def test_several_organizations_propose_one_host_and_the_first_to_verify_holds_it(
    proposing: Api,
) -> None:
    """A proposal holds nothing: Globex may propose the host Acme proposed (no squatting).
    The first to verify holds it, the other's proposal is dropped, and a 409 then names no
    organization."""
    api = proposing
    acme, globex = api.auth(), api.auth(api.globex_key)
    first = await api.client.post("/domains", json={"host": ACME_HOST}, headers=globex)
    assert first.status == 201, await first.text()
    squatted = await first.json()
    mine = await api.client.post("/domains", json={"host": ACME_HOST}, headers=acme)
    assert mine.status == 201, await mine.text()
    proposed = await mine.json()
    again = await api.client.post("/domains", json={"host": ACME_HOST}, headers=acme)
    assert again.status == 409
    assert (await again.json())["message"] == f"{ACME_HOST} is already a domain of yours"
    async with txt_server() as dns:
        api.service.settings.domains.resolver_port = dns.port
        dns.records[f"_voicedock.{ACME_HOST}"] = [proposed["verification"]["value"]]
        # Globex's token is not in Acme's record: its proposal is not verified.
        late = await api.client.post(f"/domains/{squatted['id']}/verify", headers=globex)
        assert late.status == 409
        done = await api.client.post(f"/domains/{proposed['id']}/verify", headers=acme)
        assert done.status == 200, await done.text()
        assert (await done.json())["status"] == "verified"
    # Globex's proposal was dropped.
    gone = await api.client.get(f"/domains/{squatted['id']}", headers=globex)
    assert gone.status == 404
    assert (await (await api.client.get("/domains", headers=globex)).json())["domains"] == []
    taken = await api.client.post("/domains", json={"host": ACME_HOST}, headers=globex)
    assert taken.status == 409
    body = await taken.json()
    assert body == {"error": "Conflict", "message": f"{ACME_HOST} is not available"}
    assert org_id(ACME) not in await taken.text()


async def test_a_proposal_not_verified_in_time_is_dropped(proposing: Api) -> None:
    """After ``[domains] pending_days`` a proposal is no longer listed, read or counted."""
    api = proposing
    api.service.settings.domains.pending_days = 7
    stale = new_domain(org_id(ACME), ACME_HOST, DomainKind.CONSOLE, verified=False)
    stale.created_at -= timedelta(days=8)
    await insert_new_domain(api.service.store, stale, nothing)
    fresh = new_domain(org_id(ACME), "d1.acme.example", DomainKind.CONSOLE, verified=False)
    fresh.created_at -= timedelta(days=6)
    await insert_new_domain(api.service.store, fresh, nothing)
    listed = await (await api.client.get("/domains", headers=api.auth())).json()
    assert [d["host"] for d in listed["domains"]] == ["d1.acme.example"]
    assert listed["pagination"]["total"] == 1
    gone = await api.client.get(f"/domains/{stale.id}", headers=api.auth())
    assert gone.status == 404
    # Proposed afresh, it is a new proposal with a new token.
    resp = await api.client.post("/domains", json={"host": ACME_HOST}, headers=api.auth())
    assert resp.status == 201, await resp.text()
    renewed = await resp.json()
    assert renewed["id"] != stale.id
    assert renewed["verification"]["value"] != stale.verification_token


async def test_verification_by_dns_is_the_operators_choice(api: Api) -> None:
    api.service.settings.domains.tenant_proposals = True
    resp = await api.client.post("/domains", json={"host": ACME_HOST}, headers=api.auth())
    assert resp.status == 201
    domain_id = (await resp.json())["id"]
    verify = await api.client.post(f"/domains/{domain_id}/verify", headers=api.auth())
    assert verify.status == 403


async def test_a_console_domain_takes_only_its_organizations_keys(api: Api) -> None:
    await add_domain(api, ACME, ACME_HOST)
    on_acme = {"Host": ACME_HOST}
    mine = await api.client.get("/calls", headers={**api.auth(), **on_acme})
    assert mine.status == 200
    theirs = await api.client.get("/calls", headers={**api.auth(api.globex_key), **on_acme})
    assert theirs.status == 403
    body = await theirs.json()
    assert body == {"error": "Forbidden", "message": f"this API key is not valid on {ACME_HOST}"}
    with_port = {"Host": f"{ACME_HOST.upper()}:8443"}
    refused = await api.client.get("/calls", headers={**api.auth(api.globex_key), **with_port})
    assert refused.status == 403
    # Any other host is the operator's: every organization's key, as before.
    for host in ("127.0.0.1", "api.operator.example", GLOBEX_HOST):
        resp = await api.client.get("/calls", headers={**api.auth(api.globex_key), "Host": host})
        assert resp.status == 200, host
    # The console's sign-in too.
    sign_in = await api.client.post(
        "/console/session", json={"api_key": api.globex_key}, headers=on_acme
    )
    assert sign_in.status == 403
    signed = await api.client.post(
        "/console/session", json={"api_key": api.acme_key}, headers=on_acme
    )
    assert signed.status == 200


async def test_a_sip_or_pending_domain_is_no_console_host(proposing: Api) -> None:
    api = proposing
    await add_domain(api, ACME, "sip.acme.example", DomainKind.SIP)
    resp = await api.client.post("/domains", json={"host": ACME_HOST}, headers=api.auth())
    assert resp.status == 201
    for host in ("sip.acme.example", ACME_HOST):
        headers = {**api.auth(api.globex_key), "Host": host}
        assert (await api.client.get("/calls", headers=headers)).status == 200, host


async def test_the_console_shows_the_organizations_branding_on_its_domain(api: Api) -> None:
    await add_domain(api, ACME, ACME_HOST)
    await add_domain(api, GLOBEX, GLOBEX_HOST)
    async with api.service.store.transaction() as tx:
        await tx.set_branding(branding(org_id(ACME), "Acme <Voice>", PNG))
    page = await api.client.get("/console", headers={"Host": ACME_HOST})
    text = await page.text()
    assert "<title>Acme &lt;Voice&gt; console</title>" in text
    assert '<img src="/console/logo" alt="">Acme &lt;Voice&gt;</a>' in text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    logo = await api.client.get("/console/logo", headers={"Host": ACME_HOST})
    assert logo.status == 200
    assert logo.content_type == "image/png"
    assert await logo.read() == PNG
    # Globex set no branding: its own name, no logo.
    globex = await (await api.client.get("/console", headers={"Host": GLOBEX_HOST})).text()
    assert "<title>globex console</title>" in globex
    assert "/console/logo" not in globex
    assert (await api.client.get("/console/logo", headers={"Host": GLOBEX_HOST})).status == 404
    # The operator's host: voicedock's console, no logo.
    plain = await (await api.client.get("/console")).text()
    assert "<title>voicedock console</title>" in plain
    assert "Acme" not in plain
    assert (await api.client.get("/console/logo")).status == 404


async def test_forwarded_host_counts_only_where_the_operator_trusts_the_proxy(api: Api) -> None:
    await add_domain(api, ACME, ACME_HOST)
    forwarded = {**api.auth(api.globex_key), "X-Forwarded-Host": ACME_HOST}
    assert (await api.client.get("/calls", headers=forwarded)).status == 200
    api.service.settings.domains.trust_forwarded_host = True
    assert (await api.client.get("/calls", headers=forwarded)).status == 403
    # Behind the proxy, Host is the proxy's own: a forged one no longer counts.
    forged = {**api.auth(api.globex_key), "Host": ACME_HOST, "X-Forwarded-Host": "x.example"}
    assert (await api.client.get("/calls", headers=forged)).status == 200


async def test_a_sip_domain_admits_only_its_organizations_numbers(api: Api) -> None:
    """An inbound call naming an organization's verified sip domain reaches only that
    organization's numbers; any other host (a console domain, none, an address) as before."""
    store = api.service.store
    await add_domain(api, ACME, "sip.acme.example", DomainKind.SIP)
    await add_domain(api, GLOBEX, GLOBEX_HOST)
    acme, globex = org_id(ACME), org_id(GLOBEX)
    assert await sip_domain_admits(store, "sip.acme.example", acme)
    assert await sip_domain_admits(store, "SIP.Acme.Example:5060", acme)
    assert not await sip_domain_admits(store, "sip.acme.example", globex)
    for other in ("", "127.0.0.1", "[::1]:5060", "sip.nobody.example", GLOBEX_HOST):
        assert await sip_domain_admits(store, other, acme), other
        assert await sip_domain_admits(store, other, globex), other


def test_freeswitch_passes_the_request_uris_host() -> None:
    from voicedock.pbx.freeswitch.esl.wire import EslEvent
    from voicedock.pbx.freeswitch.inbound import parked_inbound_call

    headers = {
        "Caller-Destination-Number": "+31850835037",
        "Caller-Caller-ID-Number": "+31612345678",
        "variable_sip_req_host": "sip.acme.example",
    }
    event = EslEvent(headers={}, event_headers=headers)
    call = parked_inbound_call(event, "uid-1", {"+31850835037"})
    assert call is not None
    assert call.domain == "sip.acme.example"
