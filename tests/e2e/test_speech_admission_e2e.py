"""Admission control where a caller stands: the lab carrier calls one of our numbers on the
real Asterisk while the node's offline recognizer is at capacity.

The recognizer is saturated deterministically: the node runs one recognition worker
(``[speech] recognition_workers = 1``), a transcription stand-in holds it until the test
releases it, and a second one waits behind it, so the pool's wait
(``voicedock_speech_recognition_wait_seconds``) grows past ``[speech] admission_wait_ms`` (the
default) for as long as the test wants. The inbound call is then rejected at the PBX, before
anything is stored (``calls/speech_admission.py``): the carrier's leg ends with the cause Asterisk
reports for a rejected call (Q.850 21, ``rejected``), no channel or bridge is left at the PBX,
``GET /calls`` lists no call (no record is made for a call voicedock did not take, as for a
number it does not serve), and ``GET /metrics`` counts one refusal of kind ``inbound``. Once
the pool has drained, the next call from the carrier is answered normally.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import LiveService, serve, service_settings
from e2e.test_metrics_e2e import samples, scrape, value
from e2e.trunk_observer import observe_trunk
from fakes.world import ACME_NUMBERS
from pbx.freeswitch.live_service import TERMINAL, until
from voicedock.pbx.causes import CallError, error_for_unanswered
from voicedock.pipeline.pools.worker_pool import Priority
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

TOKEN = "metrics-token-for-the-lab-test"
CALLER = "+31623731538"
CARRIER = "pstn"  # the lab carrier's endpoint: its leg of an inbound call is PJSIP/pstn-...


async def calls_from(live: LiveService, caller: str) -> list[dict[str, Any]]:
    status, body = await live.get("/calls")
    assert status == 200, body
    return [c for c in body["calls"] if c["caller_phone"] == caller]


async def pbx_objects(live: LiveService) -> tuple[set[str], set[str]]:
    """The ids of every channel and bridge the lab Asterisk has now."""
    channels = {c.id for c in await live.pbx.ari.list_channels()}
    bridges = await live.pbx.ari.request("GET", "/bridges")
    return channels, {str(b["id"]) for b in bridges} if isinstance(bridges, list) else set()


def refused_inbound(text: str) -> float:
    found = samples(text)
    return value(found, "voicedock_calls_refused_total", kind="inbound", reason="speech-capacity")


async def test_inbound_call_is_rejected_at_the_pbx_while_offline_speech_is_at_capacity(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    settings = service_settings(lab, tmp_path / "admission.db", "ari")
    settings.metrics.bearer_token = TOKEN
    settings.speech.recognition_workers = 1
    live = await serve(settings)
    gate = threading.Event()
    try:
        recognition = live.service.runner.speech.recognition
        assert recognition is not None  # [speech] recognition_pool is on by default
        before = await pbx_objects(live)
        status, text = await scrape(live)
        assert status == 200
        assert refused_inbound(text) == 0

        async with observe_trunk(lab, CARRIER) as carrier:
            try:
                # A long transcription holds the only worker; another waits behind it.
                recognition.pool.submit(lambda: gate.wait(60), Priority.DUE)
                queued = recognition.pool.submit(lambda: "words", Priority.DUE)
                await until(lambda: not recognition.admits(), within=5)

                leg = await asyncio.to_thread(lab.originate_inbound, ACME_NUMBERS[0], caller=CALLER)
                cause, sip = await carrier.hangup_cause(leg)
                assert error_for_unanswered(cause, sip) is CallError.REJECTED, (cause, sip)
                assert cause == 21  # Q.850 call rejected: the carrier may route it elsewhere

                assert await calls_from(live, CALLER) == []  # no record, not even a failed one
                await until(lambda: _same(live, before), within=5)  # nothing left at the PBX
                status, text = await scrape(live)
                assert status == 200
                assert refused_inbound(text) == 1
                found = samples(text)
                assert value(found, "voicedock_speech_recognition_wait_seconds") >= (
                    settings.speech.admission_wait_ms / 1000
                )
                assert value(found, "voicedock_speech_recognition_waiting") == 1
            finally:
                gate.set()
            assert await queued.future == "words"

            # The pool drained: the waits leave its window, and the next caller is answered.
            await until(recognition.admits, within=10)
            leg = await asyncio.to_thread(lab.originate_inbound, ACME_NUMBERS[0], caller=CALLER)

            async def answered() -> bool:
                return any(c["status"] == "in-progress" for c in await calls_from(live, CALLER))

            await until(answered, within=20)
            (call,) = await calls_from(live, CALLER)
            assert call["assistant_phone"] == ACME_NUMBERS[0]
            assert leg not in carrier.causes  # the carrier's leg is up
            await live.pbx.ari.hangup_channel(leg)  # the caller hangs up
            ended = await live.wait_status(call["id"], TERMINAL, within=15)
            assert ended["status"] == "ended", ended
            await until(lambda: _same(live, before), within=10)

        status, text = await scrape(live)
        assert refused_inbound(text) == 1  # the answered call was not counted
    finally:
        gate.set()
        await live.client.close()


async def _same(live: LiveService, before: tuple[set[str], set[str]]) -> bool:
    channels, bridges = await pbx_objects(live)
    return not (channels - before[0]) and not (bridges - before[1])
