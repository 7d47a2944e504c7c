"""Admission control through the real app (FakePbx): while final transcripts wait past
``[speech] admission_wait_ms`` for the node's offline recognizer, a new offline-speech call is
answered 503 with Retry-After in the documented error shape and never dialled, an inbound call
is rejected, a cloud-STT call is still placed, and ``/metrics`` counts the refusals; once the
waits are back under the bound, the same request places the call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.conftest import Api, serving
from fakes.world import ACME_NUMBERS, DESTINATION, SUPPORT_ID, make_settings
from voicedock.pbx.base import InboundCall
from voicedock.pipeline.hearing.turn_model import installed as turn_model_installed
from voicedock.pipeline.pools.worker_pool import Priority

pytestmark = pytest.mark.unit

TOKEN = "a-metrics-token-0123456789"
BODY = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
CLOUD_STT = {
    **BODY,
    "assistant_override": {
        "stt_config": {"provider": "deepgram", "api_key": "dg-0123456789ab"},
        "turn_detection": "silence",
    },
}
# The same cloud STT, its turns detected by the node's turn model (the recognition pool's).
CLOUD_STT_TURN_MODEL = {
    **BODY,
    "assistant_override": {
        "stt_config": {"provider": "deepgram", "api_key": "dg-0123456789ab"},
        "turn_detection": "model",
    },
}


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def metrics(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await api.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(await resp.text())
        for s in family.samples
    }


def refused(kind: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("voicedock_calls_refused_total", (("kind", kind), ("reason", "speech-capacity")))


async def test_new_calls_are_503_while_offline_speech_is_over_its_bound_then_placed(
    tmp_path: Path,
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'api.db'}")
    settings.metrics.bearer_token = TOKEN
    settings.speech.recognition_workers = 1
    settings.speech.admission_wait_ms = 50
    for number in settings.numbers:
        number.max_concurrent_calls = 10
    async with serving(settings) as api:
        recognition = api.service.runner.speech.recognition
        assert recognition is not None
        recognition.pool.window_s = 0.3  # a wait leaves the signal sooner than 2 s
        before = await metrics(api)
        assert before[refused("outbound")] == 0
        assert before[("voicedock_speech_recognition_wait_seconds", ())] == 0
        gate = threading.Event()
        try:
            # A long transcription holds the only worker; a caller's final waits behind it.
            recognition.pool.submit(lambda: gate.wait(10), Priority.DUE)
            final = recognition.pool.submit(lambda: "words", Priority.DUE)
            await until(lambda: recognition.wait_s() > 0.1)

            resp = await api.client.post("/calls/outbound", json=BODY, headers=api.auth())
            assert resp.status == 503
            assert int(resp.headers["Retry-After"]) >= 1
            answer = await resp.json()
            assert set(answer) == {"error", "message"}
            assert answer["error"] == "Node at capacity"
            assert api.pbx.originated == []  # nothing dialled ...
            listed = await api.client.get("/calls", headers=api.auth())
            assert (await listed.json())["calls"] == []  # ... nor stored

            # An inbound call for an offline assistant is rejected at the PBX.
            inbound = InboundCall("chan-1", "+31612345670", ACME_NUMBERS[0])
            assert await api.service.engine.inbound.accept(inbound) is None

            # A call transcribed by a cloud provider, its turns decided by silence, puts
            # nothing on the recognizer: placed.
            cloud = await api.client.post("/calls/outbound", json=CLOUD_STT, headers=api.auth())
            assert cloud.status == 200, await cloud.text()
            assert len(api.pbx.originated) == 1
            expected_refusals = 1
            if turn_model_installed():  # its turn model asked at each pause is pool work
                model = await api.client.post(
                    "/calls/outbound", json=CLOUD_STT_TURN_MODEL, headers=api.auth()
                )
                assert model.status == 503, await model.text()
                assert len(api.pbx.originated) == 1
                expected_refusals = 2

            during = await metrics(api)
            assert during[refused("outbound")] == expected_refusals
            assert during[refused("inbound")] == 1
            assert during[refused("campaign")] == 0
            assert during[("voicedock_speech_recognition_wait_seconds", ())] > 0.05
            assert during[("voicedock_speech_recognition_waiting", ())] == 1
            assert during[("voicedock_speech_recognition_workers", ())] == 1
        finally:
            gate.set()
        assert await final.future == "words"
        await until(recognition.admits)

        again = await api.client.post("/calls/outbound", json=BODY, headers=api.auth())
        assert again.status == 200
        assert len(api.pbx.originated) == 2
        assert await api.service.engine.inbound.accept(inbound) is not None
        after = await metrics(api)
        assert after[refused("outbound")] == expected_refusals
        assert after[("voicedock_speech_recognition_wait_seconds", ())] < 0.05
