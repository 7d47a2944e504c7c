"""Twenty callees answering together hear the greeting at once, on the lab FreeSWITCH.

``tests/e2e/test_greeting_latency_e2e.py`` on FreeSWITCH: twenty outbound calls with the offline
voice through REST to the lab party that answers and listens, each call's answer → greeting
first audio read from its own record, and its stored ``timings`` (the media leg's set-up).
Measured on the 2-core lab machine: p95 0.28 s.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest

from e2e.audio_helpers import require_offline_speech, warm_offline_speech
from e2e.test_greeting_latency_e2e import (
    CALLS,
    GREETING,
    P95_BOUND_S,
    all_greeted,
    check_timings,
    p95,
)
from freeswitch_lab.lab_service import LabFreeswitchService, lab_settings, serve_on_lab
from pbx.freeswitch.live_service import TERMINAL
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import ANSWERS

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_twenty_callees_answering_together_hear_the_greeting_at_once(
    freeswitch_lab: LabFreeswitch, tmp_path: Path
) -> None:
    require_offline_speech()
    await warm_offline_speech()
    settings = lab_settings(freeswitch_lab, tmp_path / "fslab.db", None)
    for number in settings.numbers:
        number.max_concurrent_calls = CALLS + 5  # the whole campaign at once
    async with serve_on_lab(freeswitch_lab, settings) as (client, service, key):
        live = LabFreeswitchService(client, service, key, freeswitch_lab)
        override = {"assistant_override": {"first_message": GREETING}}
        call_ids = await asyncio.gather(*(live.place(ANSWERS, **override) for _ in range(CALLS)))
        delays = await all_greeted(live, call_ids)
        for call_id, delay in zip(call_ids, delays, strict=True):
            ended = await live.wait_status(call_id, TERMINAL, within=30)
            assert ended["status"] == "ended", ended
            await check_timings(partial(live.call, call_id), delay)  # the media leg, stored
    print(  # the measurement, for the record (pytest -s)
        f"FreeSWITCH: answer → greeting first audio over {CALLS} calls: "
        f"p50 {sorted(delays)[CALLS // 2]:.3f} s, p95 {p95(delays):.3f} s, max {max(delays):.3f} s"
    )
    assert p95(delays) <= P95_BOUND_S, sorted(delays)
