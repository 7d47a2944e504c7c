"""``voicedock organizations domains`` and ``set-branding``: the operator gives organizations
their host names (one organization per host, checked as DNS names), verifies a proposed one,
removes them and sets the console's branding; each change is in the organization's audit
trail as the operator's."""

from __future__ import annotations

import asyncio
import getpass
import json
from datetime import timedelta
from pathlib import Path

import pytest

from test_cli import write_config
from voicedock.cli import main
from voicedock.domain.domains import DomainKind
from voicedock.organizations.config_mirror import ensure_organization
from voicedock.organizations.domains import insert_new_domain, new_domain
from voicedock.store import open_store

pytestmark = pytest.mark.unit

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_the_operator_adds_lists_and_removes_an_organizations_domains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--config", str(write_config(tmp_path))]
    domains = ["organizations", "domains"]
    assert main([*domains, "add", *args, "acme", "Voice.Acme.example"]) == 0
    assert main([*domains, "add", *args, "acme", "bücher.example", "--kind", "sip"]) == 0
    capsys.readouterr()
    assert main([*domains, "add", *args, "globex", "voice.acme.example"]) == 1
    refused = capsys.readouterr().err
    assert "voice.acme.example is already a verified domain of 'acme'" in refused
    assert main([*domains, "add", *args, "globex", "192.0.2.7"]) == 1
    assert "not a domain name" in capsys.readouterr().err
    assert main([*domains, "list", *args, "acme"]) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [row[:3] for row in listed] == [
        ["voice.acme.example", "console", "verified"],
        ["xn--bcher-kva.example", "sip", "verified"],
    ]
    assert main([*domains, "remove", *args, "globex", "voice.acme.example"]) == 1
    assert "'globex' has no domain" in capsys.readouterr().err
    assert main([*domains, "remove", *args, "acme", "bücher.example"]) == 0
    assert capsys.readouterr().out == "removed xn--bcher-kva.example\n"
    assert main([*domains, "list", *args, "acme"]) == 0
    assert "bcher" not in capsys.readouterr().out
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    brand = ["organizations", "set-branding", *args, "acme", "--name", "Acme Voice"]
    assert main([*brand, "--logo", str(logo)]) == 0
    assert "a image/png logo" in capsys.readouterr().out
    (tmp_path / "logo.svg").write_text("<svg/>", encoding="utf-8")
    assert main([*brand, "--logo", str(tmp_path / "logo.svg")]) == 1
    assert "PNG, JPEG or GIF" in capsys.readouterr().err
    logo.write_bytes(PNG + b"\x00" * 256 * 1024)
    assert main([*brand, "--logo", str(logo)]) == 1
    assert "at most 256 KiB" in capsys.readouterr().err
    assert main(["audit", *args, "--organization", "acme"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["action"] for e in events] == [
        "branding.updated",
        "domain.deleted",
        "domain.created",
        "domain.created",
    ]
    assert {(e["actor"], e["actor_kind"]) for e in events} == {(getpass.getuser(), "operator")}


def _propose(tmp_path: Path, organization: str, host: str, days_ago: int = 0) -> None:
    """``organization`` proposes ``host`` as ``POST /domains`` stores it (pending)."""

    async def run() -> None:
        store = await open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
        try:
            await store.migrate()
            org = await ensure_organization(store, organization)
            domain = new_domain(org.id, host, DomainKind.CONSOLE, verified=False)
            domain.created_at -= timedelta(days=days_ago)
            await insert_new_domain(store, domain, _no_event)
        finally:
            await store.aclose()

    asyncio.run(run())


async def _no_event(_tx: object, _domain_id: str) -> None:
    """No audit event."""


def test_the_operator_s_domain_wins_over_organizations_proposals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tenant's pending proposal blocks nothing: the operator gives the host to whom it
    says (the proposals of others dropped), and verifies an organization's own proposal."""
    args = ["--config", str(write_config(tmp_path))]
    domains = ["organizations", "domains"]
    _propose(tmp_path, "globex", "voice.acme.example")
    _propose(tmp_path, "acme", "help.acme.example")
    assert main([*domains, "add", *args, "acme", "voice.acme.example"]) == 0
    assert "added voice.acme.example" in capsys.readouterr().out
    assert main([*domains, "list", *args, "globex"]) == 0
    assert capsys.readouterr().out == ""
    assert main([*domains, "add", *args, "acme", "help.acme.example"]) == 0
    assert "verified help.acme.example" in capsys.readouterr().out
    assert main([*domains, "list", *args, "acme"]) == 0
    listed = [line.split()[:3] for line in capsys.readouterr().out.splitlines()]
    assert listed == [
        ["help.acme.example", "console", "verified"],
        ["voice.acme.example", "console", "verified"],
    ]
    # Verified, a host is Acme's: the operator is told so, naming it.
    for org in ("initech", "acme"):
        assert main([*domains, "add", *args, org, "voice.acme.example"]) == 1
        assert "already a verified domain of 'acme'" in capsys.readouterr().err


def test_a_proposal_past_its_days_is_no_longer_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--config", str(write_config(tmp_path, "[domains]\npending_days = 3\n"))]
    _propose(tmp_path, "acme", "old.acme.example", days_ago=4)
    _propose(tmp_path, "acme", "new.acme.example", days_ago=2)
    assert main(["organizations", "domains", "list", *args, "acme"]) == 0
    listed = [line.split()[:3] for line in capsys.readouterr().out.splitlines()]
    assert listed == [["new.acme.example", "console", "pending"]]
