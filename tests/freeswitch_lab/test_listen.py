"""Live listen, whisper and take over on the real lab FreeSWITCH: the listener decodes both
sides of a call to the speaking party (its side carries speech), a supervisor's whisper
reaches the model (the OpenAI-compatible stand-in) and is stored as role ``supervisor``, and
"take over" warm-transfers the call to the supervisor's extension (``warmaccept``), which
FreeSWITCH bridges the caller to (``tests/e2e/test_listen_e2e.py``: the same on Asterisk)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from e2e.test_listen_e2e import (
    REPLY,
    SUPERVISOR_EXTENSION,
    audited_once,
    listen_whisper_take_over,
)
from fakes.llm_standin import LlmStandIn
from freeswitch_lab.lab_service import LabService

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    async with LlmStandIn(reply=REPLY) as standin:
        yield standin


async def bridged(live: LabService, channel: str) -> bool:
    rows = [c.raw for c in await live.fs.esl.show_channels() if c.uuid == channel]
    return bool(rows) and rows[0].get("application") == "uuid_bridge"


async def test_a_supervisor_listens_whispers_and_takes_the_call_over(
    live: LabService, llm: LlmStandIn
) -> None:
    live.service.settings.listen.supervisor_extension = SUPERVISOR_EXTENSION
    call_id = await listen_whisper_take_over(live, llm)
    # The caller's channel is bridged to the supervisor's extension at FreeSWITCH.
    channel = await live.channel_of(call_id)
    async with asyncio.timeout(10):
        while not await bridged(live, channel):
            await asyncio.sleep(0.2)
    rows = await live.fs.esl.show_channels()
    assert [c for c in rows if c.raw.get("dest") == SUPERVISOR_EXTENSION]
    await live.fs.esl.api(f"uuid_kill {channel}")  # the caller is the supervisor's now
    await audited_once(live, call_id)
