"""Caller keypad input on the real lab FreeSWITCH: the keypad party presses 1234# (its DTMF
reaches voicedock as ESL ``DTMF`` events on the call's channel) and the model, the
OpenAI-compatible stand-in, receives ONE user message "Keypad: 1234#", shown once in the
call's transcript, its events and its SSE stream (``tests/e2e/test_keypad_e2e.py``, the same
call on the lab Asterisk)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from e2e.test_keypad_e2e import REPLY, keypad_call
from fakes.llm_standin import LlmStandIn
from freeswitch_lab.lab_service import LabService

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(90)]


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    async with LlmStandIn(reply=REPLY) as standin:
        yield standin


async def test_the_party_keys_reach_the_model_as_one_user_turn(
    live: LabService, llm: LlmStandIn
) -> None:
    await keypad_call(live, llm)
