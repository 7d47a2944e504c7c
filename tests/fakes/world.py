"""A small configured world for engine and API tests: one trunk, two orgs, numbers, assistants."""

from __future__ import annotations

import base64
import os

from voicedock.config import (
    AssistantSettings,
    NumberSettings,
    PbxSettings,
    PolicySettings,
    Settings,
    TrunkSettings,
)
from voicedock.organizations.config_mirror import stable_id

ACME = "acme"
GLOBEX = "globex"
ACME_NUMBERS = ("+31850835037", "+31850835038")
GLOBEX_NUMBER = "+4930123456"
DESTINATION = "+31612345678"


BYOK_KEY = "bG9vcGJhY2stb25seS10ZXN0LWtleS0zMi1ieXRlcyE="  # 32 bytes, tests only


def new_operator_key() -> str:
    """A fresh operator key, as the operator makes one (docs/provider-keys.md)."""
    return base64.b64encode(os.urandom(32)).decode("ascii")


def make_settings(database_url: str = "sqlite:///unused.db") -> Settings:
    s = Settings()
    s.database.url = database_url
    s.pbx = PbxSettings(kind="none")
    # Served over plain http to aiohttp's client, which sends a Secure cookie over https only.
    s.console.secure_cookie = False
    # Organizations may store their own provider keys (sealed under this operator key).
    s.byok.key = BYOK_KEY
    # The countries of the numbers below, as load_settings defaults them for an operator.
    s.policy = PolicySettings(
        allowed_countries=["NL", "DE"], internal_targets=["sales", "support-*"]
    )
    s.trunks = [TrunkSettings(name="carrier", endpoint="carrier-ep")]
    s.assistants = [
        AssistantSettings(
            name="Support", organization=ACME, business_name="Acme Corp", first_message="Hi!"
        ),
        AssistantSettings(name="Globex desk", organization=GLOBEX),
    ]
    s.numbers = [
        NumberSettings(
            number=ACME_NUMBERS[0], trunk="carrier", organization=ACME, assistant="Support"
        ),
        NumberSettings(number=ACME_NUMBERS[1], trunk="carrier", organization=ACME),
        NumberSettings(number=GLOBEX_NUMBER, trunk="carrier", organization=GLOBEX),
    ]
    return s


def org_id(name: str) -> str:
    return stable_id("organization", name)


def assistant_id(org: str, name: str) -> str:
    return stable_id("assistant", org_id(org), name)


def number_id(number: str) -> str:
    return stable_id("number", number)


SUPPORT_ID = assistant_id(ACME, "Support")
GLOBEX_ASSISTANT_ID = assistant_id(GLOBEX, "Globex desk")
