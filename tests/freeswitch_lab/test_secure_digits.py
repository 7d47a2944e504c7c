"""Secure keypad entry on the real lab FreeSWITCH: the card party keys 16 digits and # (ESL
``DTMF`` events on the call's channel, and each key's tone in the audio) into the model's
``collect_secure_digits`` tool. As on the lab Asterisk (``tests/e2e/test_secure_digits_e2e.py``,
whose checks this runs): the organization's server receives them signed; the model, the stored
call, its SSE stream, the log and the recording (its DTMF decoded) hold none of them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from e2e.test_secure_digits_e2e import CARD, secure_digits_call, secure_settings
from e2e.test_secure_digits_e2e import llm as llm  # the fixtures: the model, the server
from e2e.test_secure_digits_e2e import server as server
from fakes.llm_standin import LlmStandIn
from fakes.tool_server import ToolServer
from freeswitch_lab.lab_service import LabService, lab_settings, serve_on_lab
from pbx.freeswitch.live_service import speech_fakes
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import CARD as CARD_PARTY

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_secure_digits_reach_the_organizations_server_alone(
    freeswitch_lab: LabFreeswitch,
    tmp_path: Path,
    llm: LlmStandIn,
    server: ToolServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with speech_fakes() as (name, fakes):
        settings = lab_settings(freeswitch_lab, tmp_path / "secure.db", name)
        secure_settings(settings, llm, server, tmp_path)
        async with serve_on_lab(freeswitch_lab, settings) as (client, service, key):
            live = LabService(client, service, key, freeswitch_lab, fakes)
            await secure_digits_call(live, llm, server, CARD_PARTY)
    assert caplog.records
    assert CARD not in caplog.text
    assert CARD[:8] not in caplog.text
