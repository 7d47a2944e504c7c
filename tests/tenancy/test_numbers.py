"""Numbers and trunks belong to the operator: no organization's key creates a number, points
one at another trunk or raises its limit; trunks serve the organizations the operator lists;
another organization's objects are "not found", never "taken" or "forbidden".

Each attack goes through REST against the real service on the lab Asterisk; what a caller id
would be, Asterisk says: an AMI session of the test's own sees every channel the PBX creates,
with the caller id it carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import voicedock
from tenancy.conftest import EXAMPLE, OTHER_ORGANIZATION, Tenants
from voicedock.api.api_keys import issue_api_key
from voicedock.config import Settings, TrunkSettings, load_settings
from voicedock.domain.ids import new_outbound_call_id
from voicedock.domain.records import KeyScope, PhoneNumber, utcnow
from voicedock.domain.webhooks import WebhookEndpoint
from voicedock.errors import ConfigError
from voicedock.organizations.config_mirror import stable_id
from voicedock_lab.ami_probe import encode_action, split_messages
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.asterisk, pytest.mark.e2e]

ACME_NUMBER = "+31850835037"  # the example's [[numbers]]
ACME_ASSISTANT = stable_id("assistant", stable_id("organization", "acme"), "Customer Support")
BANK = "+31205553000"  # a number nobody on this node holds: a bank's, say
HANGS_UP = "+31610000200"  # the lab's party that answers and hangs up after 1 s


# -- what Asterisk saw --------------------------------------------------------------------------


@dataclass
class Channels:
    """Every channel Asterisk created while observed: its name, caller id and extension."""

    seen: list[dict[str, str]] = field(default_factory=list)

    def caller_ids(self) -> set[str]:
        return {c.get("CallerIDNum", "") for c in self.seen}

    def dialled(self, destination: str) -> list[dict[str, str]]:
        """The far side of the carrier: the channels that rang ``destination``."""
        return [c for c in self.seen if c.get("Exten") == destination]


@contextlib.asynccontextmanager
async def watch_channels(lab: LabAsterisk) -> AsyncIterator[Channels]:
    channels = Channels()
    reader, writer = await asyncio.open_connection(lab.ami_host, lab.ami_port)
    user, secret = lab.ami_credentials
    await reader.readline()  # banner
    login = [("Action", "Login"), ("Username", user), ("Secret", secret), ("Events", "call")]
    writer.write(encode_action(login))
    await writer.drain()

    async def read() -> None:
        buffer = b""
        while chunk := await reader.read(65536):
            messages, buffer = split_messages(buffer + chunk)
            channels.seen.extend(m for m in messages if m.get("Event") == "Newchannel")

    task = asyncio.create_task(read())
    try:
        await asyncio.sleep(0.2)  # logged in before anything is dialled
        yield channels
        await asyncio.sleep(1.0)  # the events of what was just dialled
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()


# -- helpers ------------------------------------------------------------------------------------


async def request(
    tenants: Tenants, method: str, path: str, key: str | None = None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key or tenants.service.key}"}
    resp = await tenants.service.client.request(method, path, json=body, headers=headers)
    return resp.status, await resp.json() if resp.content_type == "application/json" else None


async def acme_number(tenants: Tenants) -> dict[str, Any]:
    status, body = await tenants.service.get("/phone-numbers")
    assert status == 200, body
    (number,) = [n for n in body["phone_numbers"] if n["number"] == ACME_NUMBER]
    return dict(number)


async def call_and_wait(tenants: Tenants, key: str, body: dict[str, Any]) -> dict[str, Any]:
    status, placed = await request(tenants, "POST", "/calls/outbound", key, body)
    assert status == 200, placed
    status, _ = await request(tenants, "GET", f"/calls/{placed['call_id']}", key)
    assert status == 200
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        _, call = await request(tenants, "GET", f"/calls/{placed['call_id']}", key)
        if call["status"] in ("ended", "failed"):
            return dict(call)
        assert asyncio.get_running_loop().time() < deadline, call
        await asyncio.sleep(0.1)


def run_cli(config: Path, *argv: str) -> tuple[int, str, str]:
    """``voicedock <argv> --config <config>`` as the operator types it."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(voicedock.__file__).parents[1])}
    env.pop("VOICEDOCK_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "voicedock.cli", *argv, "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def operator_config(settings: Settings, tmp_path: Path, extra: str = "") -> Path:
    """The example file the operator edits, on the test's database (``extra`` appended)."""
    example = EXAMPLE.read_text(encoding="utf-8")
    database = 'url = "sqlite:///var/voicedock.db"'
    assert database in example, "the example's database line moved: update this helper"
    text = example.replace(database, f'url = "{settings.database.url}"')
    path = tmp_path / "voicedock.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


# -- numbers are the operator's -----------------------------------------------------------------


async def test_no_key_creates_a_number_or_calls_from_it(tenants: Tenants, lab: LabAsterisk) -> None:
    store = tenants.service.service.store
    admin, _ = await issue_api_key(store, "acme", "admin", KeyScope.ADMIN)
    attack = {"number": BANK, "trunk": "carrier", "max_concurrent_calls": 10000}
    for key in (tenants.service.key, admin):
        status, body = await request(tenants, "POST", "/phone-numbers", key, attack)
        assert status == 403, body
        assert body["error"] == "Operator setting", body
        assert "operator" in body["message"], body
    assert await store.find_phone_number_by_e164(BANK) is None
    status, listed = await tenants.service.get("/phone-numbers")
    assert [n["number"] for n in listed["phone_numbers"]] == [ACME_NUMBER]

    # Calling out, acme's caller id is its own number: the bank's never reaches the PBX.
    async with watch_channels(lab) as channels:
        ended = await call_and_wait(
            tenants, tenants.service.key, {"destination": HANGS_UP, "assistant_id": ACME_ASSISTANT}
        )
    assert ended["status"] == "ended", ended
    far = channels.dialled(HANGS_UP)
    assert far, channels.seen
    assert {c["CallerIDNum"] for c in far} == {ACME_NUMBER}, far
    assert BANK not in channels.caller_ids()


async def test_trunk_and_limit_are_the_operators_label_and_assistant_the_organizations(
    tenants: Tenants,
) -> None:
    store = tenants.service.service.store
    admin, _ = await issue_api_key(store, "acme", "admin", KeyScope.ADMIN)
    number = await acme_number(tenants)
    path = f"/phone-numbers/{number['id']}"
    for key in (tenants.service.key, admin):
        for change in ({"trunk": "other"}, {"max_concurrent_calls": 10000}, {"number": BANK}):
            status, body = await request(tenants, "PATCH", path, key, change)
            assert status == 403, (change, body)
            assert body["error"] == "Operator setting", body
            assert next(iter(change)) in body["message"], body
        status, body = await request(tenants, "DELETE", path, key)
        assert status == 403, body
        assert body["error"] == "Operator setting", body
    saved = await store.find_phone_number_by_e164(ACME_NUMBER)
    assert saved is not None
    assert (saved.trunk, saved.max_concurrent_calls) == ("carrier", 5)

    # What is the organization's: the label and which of its assistants answers.
    status, created = await tenants.service.post("/assistants", {"name": "Night desk"})
    assert status == 201, created
    status, body = await request(
        tenants, "PATCH", path, body={"label": "Night line", "assistant_id": created["id"]}
    )
    assert status == 200, body
    assert (body["label"], body["assistant_id"]) == ("Night line", created["id"])
    saved = await store.find_phone_number_by_e164(ACME_NUMBER)
    assert saved is not None
    assert (saved.label, saved.assistant_id) == ("Night line", created["id"])

    # Another organization's assistant is as unknown as one that does not exist.
    status, theirs = await request(
        tenants, "POST", "/assistants", tenants.other_key, {"name": "Globex desk"}
    )
    assert status == 201, theirs
    answers = [
        await request(tenants, "PATCH", path, body={"assistant_id": assistant})
        for assistant in (theirs["id"], str(uuid.uuid4()))
    ]
    assert answers[0] == answers[1]
    assert answers[0][0] == 422, answers


async def test_other_organizations_numbers_are_not_found(
    tenants: Tenants, lab: LabAsterisk
) -> None:
    number = await acme_number(tenants)
    other = tenants.other_key
    nowhere = str(uuid.uuid4())
    for method, body in (("GET", None), ("PATCH", {"label": "mine"}), ("DELETE", None)):
        theirs = await request(tenants, method, f"/phone-numbers/{number['id']}", other, body)
        missing = await request(tenants, method, f"/phone-numbers/{nowhere}", other, body)
        assert theirs == missing, (method, theirs, missing)
        assert theirs[0] == 404, theirs
    _status, listed = await request(tenants, "GET", "/phone-numbers", other)
    assert listed == {"phone_numbers": []}
    # Registering acme's number tells globex nothing: the answer is the one a free number gets.
    taken, free = [
        await request(tenants, "POST", "/phone-numbers", other, {"number": n, "trunk": "carrier"})
        for n in (ACME_NUMBER, BANK)
    ]
    assert taken == free, (taken, free)
    assert taken[0] == 403, taken

    # globex asks to call from acme's number: "not found", and the PBX sees no call.
    async with watch_channels(lab) as channels:
        answers = [
            await request(
                tenants,
                "POST",
                "/calls/outbound",
                other,
                {"destination": HANGS_UP, "number_id": number_id, "assistant": {"name": "x"}},
            )
            for number_id in (number["id"], nowhere)
        ]
    assert answers[0] == answers[1], answers
    assert answers[0][0] == 404, answers
    assert channels.seen == []
    saved = await tenants.service.service.store.find_phone_number_by_e164(ACME_NUMBER)
    assert saved is not None
    assert saved.label == "Main line"


# -- trunks are allowed per organization -------------------------------------------------------


@pytest.fixture
def acme_only_trunk(tenant_settings: Settings) -> Settings:
    """A second trunk (the same lab carrier) that the operator opens to acme alone."""
    tenant_settings.trunks.append(
        TrunkSettings(name="acme-only", endpoint="carrier", organizations=["acme"])
    )
    return tenant_settings


async def test_a_trunk_not_allowed_to_an_organization_is_not_used(
    acme_only_trunk: Settings, tenants: Tenants, lab: LabAsterisk, tmp_path: Path
) -> None:
    store = tenants.service.service.store
    # The configuration cannot put globex's number on it...
    config = operator_config(
        acme_only_trunk,
        tmp_path,
        '\n[[trunks]]\nname = "acme-only"\nendpoint = "carrier"\norganizations = ["acme"]\n'
        '\n[[numbers]]\nnumber = "+31850835040"\ntrunk = "acme-only"\norganization = "globex"\n',
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(config, environ={})
    assert refused.value.key == "numbers[1].organization"
    # ...nor can the operator's command.
    config = operator_config(
        acme_only_trunk,
        tmp_path,
        '\n[[trunks]]\nname = "acme-only"\nendpoint = "carrier"\norganizations = ["acme"]\n',
    )
    code, _, err = await asyncio.to_thread(
        run_cli,
        config,
        "numbers",
        "add",
        "+31850835040",
        "--organization",
        OTHER_ORGANIZATION,
        "--trunk",
        "acme-only",
    )
    assert code == 1, err
    assert "does not serve organization 'globex'" in err
    assert await store.find_phone_number_by_e164("+31850835040") is None

    # A number an earlier configuration left on it is still not used.
    globex = stable_id("organization", OTHER_ORGANIZATION)
    stale = PhoneNumber(str(uuid.uuid4()), globex, "+31850835040", "acme-only", 5)
    stale.created_at = stale.updated_at = utcnow()
    async with store.transaction() as tx:
        await tx.insert_phone_number(stale)

    status, trunks = await request(tenants, "GET", "/trunks", tenants.other_key)
    assert (status, trunks) == (200, {"trunks": []})
    status, body = await request(tenants, "GET", "/trunks/acme-only", tenants.other_key)
    assert status == 404, body
    status, body = await request(tenants, "GET", "/trunks/carrier", tenants.other_key)
    assert status == 404, body  # globex has no number on it
    status, trunks = await tenants.service.get("/trunks")
    assert {t["name"] for t in trunks["trunks"]} == {"carrier", "acme-only"}

    call = {"destination": HANGS_UP, "assistant": {"name": "x"}}
    async with watch_channels(lab) as channels:
        for body in (call, {**call, "number_id": stale.id}):
            status, answer = await request(
                tenants, "POST", "/calls/outbound", tenants.other_key, body
            )
            assert status == 403, answer
            assert answer["error"] == "Trunk not allowed", answer
    assert channels.seen == []


# -- the operator's command ---------------------------------------------------------------------


async def test_cli_adds_and_assigns_a_number_the_organization_calls_from(
    tenants: Tenants, tenant_settings: Settings, lab: LabAsterisk, tmp_path: Path
) -> None:
    config = operator_config(tenant_settings, tmp_path)
    new = "+31850835099"

    async def cli(*argv: str) -> tuple[int, str, str]:
        return await asyncio.to_thread(run_cli, config, "numbers", *argv)

    code, out, err = await cli(
        "add", new, "--organization", "acme", "--trunk", "carrier", "--label", "Sales"
    )
    assert code == 0, err
    assert new in out
    code, out, err = await cli("list", "--organization", "acme")
    assert code == 0, err
    assert new in out
    assert ACME_NUMBER in out
    code, _, err = await cli("add", new, "--organization", "globex", "--trunk", "carrier")
    assert code == 1
    assert "already registered to organization 'acme'" in err
    code, _, err = await cli("assign", ACME_NUMBER, "--organization", "globex")
    assert code == 1
    assert "[[numbers]]" in err  # a configured number is changed in the file

    code, out, err = await cli("assign", new, "--organization", OTHER_ORGANIZATION)
    assert code == 0, err
    _, mine = await request(tenants, "GET", "/phone-numbers", tenants.other_key)
    assert [(n["number"], n["label"]) for n in mine["phone_numbers"]] == [(new, "")]
    _, acmes = await tenants.service.get("/phone-numbers")
    assert new not in {n["number"] for n in acmes["phone_numbers"]}
    _, trunks = await request(tenants, "GET", "/trunks", tenants.other_key)
    assert [t["name"] for t in trunks["trunks"]] == ["carrier"]

    async with watch_channels(lab) as channels:
        ended = await call_and_wait(
            tenants,
            tenants.other_key,
            {"destination": HANGS_UP, "assistant": {"name": "Globex"}},
        )
    assert ended["status"] == "ended", ended
    far = channels.dialled(HANGS_UP)
    assert far, channels.seen
    assert {c["CallerIDNum"] for c in far} == {new}, far

    code, out, err = await cli("remove", new)
    assert code == 0, err
    _status, mine = await request(tenants, "GET", "/phone-numbers", tenants.other_key)
    assert mine == {"phone_numbers": []}


# -- lookups across organizations ---------------------------------------------------------------


@pytest.mark.usefixtures("unpaced")
async def test_other_organizations_objects_answer_404_as_missing_ones(tenants: Tenants) -> None:
    """Every route that takes an object id answers globex about acme's object exactly as about
    one that does not exist: never 409 (taken, in use) or 403 (there, but not yours)."""
    store = tenants.service.service.store
    acme = stable_id("organization", "acme")
    globex_admin, _ = await issue_api_key(store, OTHER_ORGANIZATION, "admin", KeyScope.ADMIN)
    # acme's objects: its number (answered by its assistant, so the assistant is "in use"),
    # a call, a campaign, a webhook endpoint, a tool template, a do-not-call entry, a key.
    number = await acme_number(tenants)
    status, placed = await tenants.service.post(
        "/calls/outbound", {"destination": HANGS_UP, "assistant_id": ACME_ASSISTANT}
    )
    assert status == 200, placed
    status, campaign = await tenants.service.post(
        "/campaigns",
        {
            "name": "reminders",
            "assistant_id": ACME_ASSISTANT,
            "contacts": [{"destination": HANGS_UP}],
        },
    )
    assert status == 201, campaign
    assert (await tenants.service.post(f"/campaigns/{campaign['id']}/cancel", {}))[0] == 200
    endpoint = WebhookEndpoint(
        id=f"we_{uuid.uuid4().hex}",
        organization_id=acme,
        url="https://crm.example.com/hook",
        secret="whsec_" + "A" * 32,
        created_at=utcnow(),
    )
    async with store.transaction() as tx:
        await tx.insert_webhook_endpoint(endpoint)
    status, template = await tenants.service.post("/tool-templates", {"type": "end_call"})
    assert status == 201, template
    assert (await tenants.service.post("/do-not-call", {"number": "+31612345671"}))[0] in (
        200,
        201,
    )
    (acme_key,) = await store.list_api_keys(acme)

    theirs_and_missing = [
        ("GET", "/assistants/{}", ACME_ASSISTANT, str(uuid.uuid4()), None),
        ("PATCH", "/assistants/{}", ACME_ASSISTANT, str(uuid.uuid4()), {"name": "x"}),
        ("DELETE", "/assistants/{}", ACME_ASSISTANT, str(uuid.uuid4()), None),
        ("GET", "/phone-numbers/{}", number["id"], str(uuid.uuid4()), None),
        ("PATCH", "/phone-numbers/{}", number["id"], str(uuid.uuid4()), {"label": "x"}),
        ("DELETE", "/phone-numbers/{}", number["id"], str(uuid.uuid4()), None),
        ("GET", "/calls/{}", placed["call_id"], new_outbound_call_id(), None),
        ("GET", "/calls/{}/recording", placed["call_id"], new_outbound_call_id(), None),
        (
            "POST",
            "/calls/{}/control",
            placed["call_id"],
            new_outbound_call_id(),
            {"type": "end-call"},
        ),
        ("GET", "/campaigns/{}", campaign["id"], "cmp_" + uuid.uuid4().hex, None),
        ("GET", "/campaigns/{}/contacts", campaign["id"], "cmp_" + uuid.uuid4().hex, None),
        (
            "POST",
            "/campaigns/{}/contacts",
            campaign["id"],
            "cmp_" + uuid.uuid4().hex,
            {"contacts": [{"destination": HANGS_UP}]},
        ),
        ("POST", "/campaigns/{}/pause", campaign["id"], "cmp_" + uuid.uuid4().hex, {}),
        ("POST", "/campaigns/{}/resume", campaign["id"], "cmp_" + uuid.uuid4().hex, {}),
        ("POST", "/campaigns/{}/cancel", campaign["id"], "cmp_" + uuid.uuid4().hex, {}),
        ("GET", "/webhooks/{}", endpoint.id, f"we_{uuid.uuid4().hex}", None),
        ("DELETE", "/webhooks/{}", endpoint.id, f"we_{uuid.uuid4().hex}", None),
        ("GET", "/tool-templates/{}", template["id"], str(uuid.uuid4()), None),
        ("PATCH", "/tool-templates/{}", template["id"], str(uuid.uuid4()), {"type": "end_call"}),
        ("DELETE", "/tool-templates/{}", template["id"], str(uuid.uuid4()), None),
        ("DELETE", "/do-not-call/{}", "+31612345671", "+31612345672", None),
        ("GET", "/api-keys/{}", acme_key.id, str(uuid.uuid4()), None),
        ("PATCH", "/api-keys/{}", acme_key.id, str(uuid.uuid4()), {"name": "x"}),
        ("DELETE", "/api-keys/{}", acme_key.id, str(uuid.uuid4()), None),
    ]
    for method, template_path, acmes, missing, body in theirs_and_missing:
        key = globex_admin if template_path.startswith("/api-keys") else tenants.other_key
        theirs = await request(tenants, method, template_path.format(acmes), key, body)
        absent = await request(tenants, method, template_path.format(missing), key, body)
        assert theirs == absent, (method, template_path, theirs, absent)
        assert theirs[0] == 404, (method, template_path, theirs)

    # acme's objects named in globex's own requests are as unknown as made-up ones.
    call = {"destination": HANGS_UP}
    transient = {"assistant": {"name": "x"}}
    campaign_body = {"name": "c", "contacts": [{"destination": HANGS_UP}]}
    named: list[tuple[str, str, dict[str, Any], Any]] = [
        ("/calls/outbound", "assistant_id", call, ACME_ASSISTANT),
        ("/calls/outbound", "number_id", {**call, **transient}, number["id"]),
        ("/campaigns", "assistant_id", campaign_body, ACME_ASSISTANT),
        ("/campaigns", "number_ids", {**campaign_body, **transient}, [number["id"]]),
    ]
    for path, field_name, body, acmes in named:
        made_up = str(uuid.uuid4()) if isinstance(acmes, str) else [str(uuid.uuid4())]
        theirs = await request(
            tenants, "POST", path, tenants.other_key, {**body, field_name: acmes}
        )
        absent = await request(
            tenants, "POST", path, tenants.other_key, {**body, field_name: made_up}
        )
        assert theirs == absent, (path, field_name, theirs, absent)
        assert theirs[0] == 404, theirs

    # An Idempotency-Key acme used is globex's to use as well: not "reused", not acme's answer.
    headers = {"Idempotency-Key": "order-17"}
    body = {"destination": HANGS_UP, "assistant_id": ACME_ASSISTANT}
    resp = await tenants.service.client.post(
        "/calls/outbound", json=body, headers={**headers, **tenants.service.auth()}
    )
    assert resp.status == 200, await resp.json()
    acme_answer = await resp.json()
    resp = await tenants.service.client.post(
        "/calls/outbound",
        json={"destination": "+31612345670", "assistant": {"name": "x"}},
        headers={**headers, **tenants.as_other()},
    )
    answer = await resp.json()
    assert resp.status == 400, answer  # globex's own answer: it has no number to call from
    assert answer["error"] == "No phone number", answer
    assert acme_answer["call_id"] not in str(answer)
