"""``GET /metrics`` on the real lab FreeSWITCH: the Event Socket link, a call placed over REST
counted while active and once ended, its originate -> answer time, the audio sent to it."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

from e2e.test_metrics_e2e import TOKEN, Samples, samples, value
from fakes.calls import call_finished
from freeswitch_lab.lab_service import LabFreeswitchService, lab_settings, serve_on_lab
from pbx.freeswitch.live_service import TERMINAL, speech_fakes
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import ANSWERS

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(60)]


async def scrape(live: LabFreeswitchService) -> Samples:
    resp = await live.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200, await resp.text()
    return samples(await resp.text())


async def test_metrics_of_a_call_on_the_lab_freeswitch(
    freeswitch_lab: LabFreeswitch, tmp_path: Path
) -> None:
    async with speech_fakes() as (name, _):
        settings = lab_settings(freeswitch_lab, tmp_path / "fsmetrics.db", name)
        settings.metrics.bearer_token = TOKEN
        async with serve_on_lab(freeswitch_lab, settings) as (client, service, key):
            live = LabFreeswitchService(client, service, key, freeswitch_lab)
            before = await scrape(live)
            assert value(before, "voicedock_pbx_link_up", pbx="", link="esl") == 1
            assert value(before, "voicedock_pbx_reconnects_total", pbx="", link="esl") == 0
            assert value(before, "voicedock_pbx_can_place_calls", pbx="") == 1

            call_id = await live.place(ANSWERS)
            answered = await live.wait_status(call_id, ("in-progress", *TERMINAL))
            assert answered["status"] == "in-progress", answered
            during = await scrape(live)
            node = service.engine.node_id
            active = value(during, "voicedock_active_calls", trunk="carrier", pbx="", node=node)
            assert active == 1
            # The audio stream connects a moment after the answer (later on a loaded machine):
            # the call ends once audio has gone out to it, not before.
            async with asyncio.timeout(10):
                while value(await scrape(live), "voicedock_media_output_frames_sent_total") == 0:
                    await asyncio.sleep(0.05)
            status, body = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
            assert status == 200, body
            ended = await live.wait_status(call_id, TERMINAL)
            await call_finished(service.runner, call_id)
            after = await scrape(live)
    reason = ended["end_reason"]
    labels = {"direction": "outbound", "status": "ended", "end_reason": reason}
    assert value(after, "voicedock_calls", **labels) == 1
    assert value(after, "voicedock_calls_ended_total", **labels) == 1
    assert not [k for k in after if k[0] == "voicedock_active_calls"]
    placed = datetime.fromisoformat(ended["created_at"].replace("Z", "+00:00"))
    answer = datetime.fromisoformat(ended["started_at"].replace("Z", "+00:00"))
    assert value(after, "voicedock_originate_answer_seconds_count", pbx="") == 1
    waited = value(after, "voicedock_originate_answer_seconds_sum", pbx="")
    assert abs(waited - (answer - placed).total_seconds()) < 0.01
    assert value(after, "voicedock_media_output_frames_sent_total") > 0
