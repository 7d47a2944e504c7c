"""``voicedock billing``: rate cards stored as new versions from TOML or JSON, refused naming
the field, shown as GET /billing/rate-card answers; the monthly spending limit set and removed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from voicedock.cli import main
from voicedock.store import open_store
from voicedock.store.protocols.billing import SpendLimit

pytestmark = pytest.mark.unit


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "voicedock.toml"
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    path.write_text(f'[database]\nurl = "{database}"\n[pbx]\nkind = "none"\n', encoding="utf-8")
    return path


CARD_TOML = """
currency = "EUR"
increment = "30/6"
minimum_charge = "0.05"
ai_fee_per_minute = "0.08"

[speech]
stt_per_minute = "0.006"

[[rates]]
per_minute = "0.02"

[[rates]]
direction = "outbound"
country = "DE"
number_type = "mobile"
per_minute = "0.09"
"""


def test_rate_cards_are_set_as_versions_and_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    card = tmp_path / "card.toml"
    card.write_text(CARD_TOML, encoding="utf-8")
    base = ["billing", "rate-cards"]
    assert main([*base, "set", "--config", config, "--organization", "acme", str(card)]) == 0
    assert main([*base, "set", "--config", config, "--organization", "acme", str(card)]) == 0
    assert "version 2" in capsys.readouterr().out
    assert main([*base, "show", "--config", config, "--organization", "acme"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["version"], shown["scope"]) == (2, "organization")
    assert shown["terms"]["rates"][1]["per_minute"] == "0.09"
    assert shown["terms"]["speech"]["tts_per_thousand_characters"] == "0"

    default = tmp_path / "default.json"
    default.write_text(json.dumps({"currency": "USD", "rates": [{"per_minute": "0.01"}]}))
    assert main([*base, "set", "--config", config, "--default", str(default)]) == 0
    assert "the default card: version 1" in capsys.readouterr().out
    assert main([*base, "show", "--config", config, "--default"]) == 0
    assert json.loads(capsys.readouterr().out)["scope"] == "default"


def test_a_card_that_cannot_be_is_refused_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    card = tmp_path / "card.toml"
    card.write_text(CARD_TOML.replace('"0.09"', "0.09"), encoding="utf-8")
    assert main(["billing", "rate-cards", "set", "--config", config, "--default", str(card)]) == 1
    assert "rates[1].per_minute" in capsys.readouterr().err
    card.write_text('currency = "EUR"\n[[rates]]\ndirection = "inbound"\nper_minute = "1"\n')
    assert main(["billing", "rate-cards", "set", "--config", config, "--default", str(card)]) == 1
    assert "catch-all rate for outbound" in capsys.readouterr().err


def test_the_monthly_spending_limit_is_set_and_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    command = ["billing", "set-limit", "--config", config, "acme"]
    assert main([*command, "--monthly-spend", "50.00", "--spend-warning", "80"]) == 0
    assert "50.00, warned at 80%" in capsys.readouterr().out
    assert main([*command, "--monthly-spend", "-3"]) == 1
    assert main([*command, "--monthly-spend", "5", "--spend-warning", "100"]) == 1

    async def limit() -> SpendLimit | None:
        store = await open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
        try:
            org = await store.get_organization_by_name("acme")
            assert org is not None
            return await store.get_spend_limit(org.id)
        finally:
            await store.aclose()

    stored = asyncio.run(limit())
    assert stored is not None
    assert (stored.monthly_spend, stored.warning_percent) == ("50.00", 80)
    assert main([*command, "--no-limit"]) == 0
    assert asyncio.run(limit()) is None
