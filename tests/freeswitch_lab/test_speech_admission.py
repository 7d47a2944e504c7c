"""Admission control where a caller stands, on the real lab FreeSWITCH: what
``tests/e2e/test_speech_admission_e2e.py`` checks on the lab Asterisk.

The node runs one recognition worker, held by a transcription stand-in until the test releases
it, with another waiting behind it, so the pool's wait grows past ``[speech]
admission_wait_ms`` (the default). The lab carrier's call to one of our numbers is then
rejected: its originate fails with ``CALL_REJECTED``, no leg is left at FreeSWITCH, no call is
recorded, ``GET /metrics`` counts one refusal of kind ``inbound``; once the pool has drained,
the next call from the carrier is answered.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from e2e.test_metrics_e2e import TOKEN, samples, value
from fakes.world import ACME_NUMBERS
from freeswitch_lab.lab_service import LabFreeswitchService, lab_settings, serve_on_lab
from pbx.freeswitch.live_service import TERMINAL, until
from voicedock.pipeline.pools.worker_pool import Priority
from voicedock_lab.errors import LabError
from voicedock_lab.freeswitch import LabFreeswitch

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(90)]

CALLER = "+31623731539"


async def refused_inbound(live: LabFreeswitchService) -> float:
    resp = await live.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200, await resp.text()
    found = samples(await resp.text())
    return value(found, "voicedock_calls_refused_total", kind="inbound", reason="speech-capacity")


async def calls_from(live: LabFreeswitchService, caller: str) -> list[dict[str, Any]]:
    status, body = await live.get("/calls")
    assert status == 200, body
    return [c for c in body["calls"] if c["caller_phone"] == caller]


async def test_inbound_call_is_rejected_while_offline_speech_is_at_capacity(
    freeswitch_lab: LabFreeswitch, tmp_path: Path
) -> None:
    settings = lab_settings(freeswitch_lab, tmp_path / "fsadmission.db", None)  # offline speech
    settings.metrics.bearer_token = TOKEN
    settings.speech.recognition_workers = 1
    async with serve_on_lab(freeswitch_lab, settings) as (client, service, key):
        live = LabFreeswitchService(client, service, key, freeswitch_lab)
        recognition = service.runner.speech.recognition
        assert recognition is not None  # [speech] recognition_pool is on by default
        before = await live.channels()
        assert await refused_inbound(live) == 0
        gate = threading.Event()
        try:
            # A long transcription holds the only worker; another waits behind it.
            recognition.pool.submit(lambda: gate.wait(60), Priority.DUE)
            queued = recognition.pool.submit(lambda: "words", Priority.DUE)
            await until(lambda: not recognition.admits(), within=5)

            with pytest.raises(LabError, match="CALL_REJECTED"):  # the carrier's leg's cause
                await asyncio.to_thread(
                    freeswitch_lab.originate_inbound, ACME_NUMBERS[0], caller=CALLER
                )
            assert await calls_from(live, CALLER) == []  # no record, not even a failed one
            assert await refused_inbound(live) == 1

            async def clean() -> bool:
                return not (await live.channels() - before)

            await until(clean, within=5)  # no leg left at FreeSWITCH
        finally:
            gate.set()
        assert await queued.future == "words"

        # The pool drained: the waits leave its window, and the next caller is answered.
        await until(recognition.admits, within=10)
        leg = await asyncio.to_thread(
            freeswitch_lab.originate_inbound, ACME_NUMBERS[0], caller=CALLER
        )  # returns once voicedock answered
        (call,) = await calls_from(live, CALLER)
        await live.wait_status(call["id"], ("in-progress",))
        await live.fs.esl.api(f"uuid_kill {leg}")  # the caller hangs up
        ended = await live.wait_status(call["id"], TERMINAL)
        assert ended["status"] == "ended", ended
        await until(clean, within=10)
        assert await refused_inbound(live) == 1  # the answered call was not counted
