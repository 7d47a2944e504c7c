"""A client organization's view of a node: the real service configured from
``voicedock.example.toml`` (its policy, numbers, trunks, caps and assistants as a user copies
them), on the session's lab Asterisk, with a ``full`` key of the example's organization
``acme`` and one of a second organization, ``globex``, that holds nothing of acme's.

Only what cannot be the user's own is changed: the database (a file in the test's directory)
and the PBX connection (the lab's ports and credentials). Every test of this directory drives
an attack through REST the way a tenant would and checks what the node, the PBX or the
operator's other tenants saw.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.conftest import LiveService, serve
from pbx.lab_calls import lab_settings
from voicedock.api.api_keys import issue_api_key
from voicedock.config import (
    AssistantSettings,
    NumberSettings,
    PbxSettings,
    RateLimitSettings,
    Settings,
    load_settings,
)
from voicedock_lab.server import LabAsterisk

EXAMPLE = Path(__file__).resolve().parents[2] / "voicedock.example.toml"
ORGANIZATION = "acme"  # the example's organization
OTHER_ORGANIZATION = "globex"


def example_settings(lab: LabAsterisk, database: Path) -> Settings:
    """``voicedock.example.toml`` as a user runs it, pointed at the lab and a fresh database."""
    settings = load_settings(EXAMPLE, environ={})
    settings.database.url = f"sqlite:///{database}"
    settings.pbx = PbxSettings(kind="asterisk", asterisk=lab_settings(lab))
    return settings


@dataclass
class Tenants:
    """The node as two client organizations see it: ``acme`` (``service.key``) and
    ``globex`` (``other_key``)."""

    service: LiveService
    other_key: str

    def as_other(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.other_key}"}


GLOBEX_NUMBER = "+31850835099"
GLOBEX_LINE = "Globex line"  # the assistant of globex's number


def give_globex_a_number(settings: Settings) -> None:
    """A caller number of globex's own (and its inbound assistant, offline), so that globex
    places calls too."""
    settings.assistants.append(
        AssistantSettings(name=GLOBEX_LINE, organization=OTHER_ORGANIZATION, provider="offline")
    )
    settings.numbers.append(
        NumberSettings(
            number=GLOBEX_NUMBER,
            trunk="carrier",
            organization=OTHER_ORGANIZATION,
            assistant=GLOBEX_LINE,
        )
    )


@pytest.fixture
def tenant_settings(lab: LabAsterisk, tmp_path: Path) -> Settings:
    """The example configuration on the lab; a test may adjust it before ``tenants`` starts."""
    return example_settings(lab, tmp_path / "tenancy.db")


@pytest.fixture
def unpaced(tenant_settings: Settings) -> Settings:
    """The example without its per-second limits (API rate limits, the trunk's max_cps), for a
    test that places calls faster than 2 a second to check something else (the limits have
    their own test, test_destinations.py)."""
    tenant_settings.rate_limits = RateLimitSettings()
    for trunk in tenant_settings.trunks:
        trunk.max_cps = 0
    return tenant_settings


@pytest.fixture
def local_model_allowed(tenant_settings: Settings) -> Settings:
    """The operator runs a model server on this host for the organizations' assistants, the one
    line of ``[egress]`` that allows it (the organization's LLM stand-ins listen on loopback)."""
    tenant_settings.egress.allowed_networks = ["127.0.0.1/32"]
    return tenant_settings


@pytest.fixture
async def tenants(tenant_settings: Settings) -> AsyncIterator[Tenants]:
    running = await serve(tenant_settings)
    try:
        other, _ = await issue_api_key(running.service.store, OTHER_ORGANIZATION)
        yield Tenants(running, other)
    finally:
        await running.client.close()
