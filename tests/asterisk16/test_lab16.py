"""The lab Asterisk 16 (Debian bullseye's 16.28) runs the lab as 22 does: its ARI reports 16.28,
and a call to a lab party reaches the party's dialplan, which speaks and takes keys."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from voicedock_lab.heard import listen, read_recording
from voicedock_lab.keys_heard import gaps_between, keys_heard
from voicedock_lab.server import LabAsterisk

pytestmark = pytest.mark.asterisk16

# The DTMF party: records, waits 3 s, says the appointment utterance (~2.3 s), then collects
# keys (Read(), # ends) into dtmf-<tag>-digits.txt, each with its time into
# dtmf-<tag>-times.txt (dialplan/lab/extensions.conf).
DTMF_PARTY = "+31612345680"


async def test_the_16_lab_reports_16_28_and_its_speaking_party_speaks_and_takes_keys(
    lab16: LabAsterisk,
) -> None:
    headers = {"Authorization": aiohttp.encode_basic_auth(*lab16.ari_credentials)}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{lab16.ari_url}/asterisk/info") as resp:
            info: dict[str, Any] = await resp.json()
        assert info["system"]["version"].startswith("16.28."), info["system"]

        tag = uuid.uuid4().hex[:10]
        channel = f"t16-{tag}"
        async with http.ws_connect(lab16.ari_events_url) as events:
            body = {
                "endpoint": f"PJSIP/{DTMF_PARTY}@{lab16.settings.trunk_name}",
                "app": lab16.settings.app_name,
                "appArgs": f"outbound,{tag}",
                "callerId": lab16.settings.service_dids[0],
                "timeout": 10,
                "channelId": channel,
                "variables": {"PJSIP_HEADER(add,X-Voicedock-Tag)": tag},
            }
            async with http.post(f"{lab16.ari_url}/channels", json=body) as resp:
                assert resp.status == 200, await resp.text()
            started = await _stasis_start(events, channel)
            assert started["args"] == ["outbound", tag]
            await asyncio.sleep(6.0)  # the party's 3 s wait and its utterance, then its Read()
            # As voicedock's send_dtmf plays keys (``pbx/asterisk/ari/client.py``): ``w`` and
            # ``W`` pause 0.5 and 1 s on Asterisk 16.28 too.
            dtmf = {"dtmf": "4w2W17#", "between": "200"}
            async with http.post(f"{lab16.ari_url}/channels/{channel}/dtmf", params=dtmf) as resp:
                assert resp.status == 204, await resp.text()
            digits = lab16.recordings_dir / f"dtmf-{tag}-digits.txt"
            assert await _appears(digits, 5.0), sorted(os.listdir(lab16.recordings_dir))
            async with http.delete(f"{lab16.ari_url}/channels/{channel}") as resp:
                assert resp.status == 204
    assert digits.read_text().strip() == "4217"
    heard = keys_heard(lab16.recordings_dir / f"dtmf-{tag}-times.txt")
    assert [key for key, _ in heard] == ["4", "2", "1", "7"]
    after_w, after_big_w, none = gaps_between(heard)
    # The pause besides each key's 100 ms and the 200 ms between keys: 0.8, 1.3, 0.3 s seen.
    assert after_w >= 0.6, heard
    assert after_big_w >= 1.1, heard
    assert none < 0.6, heard
    said = lab16.recordings_dir / f"dtmf-{tag}-tx.wav"
    assert await _appears(said, 5.0)
    await asyncio.sleep(0.5)  # MixMonitor writes the file's header when it closes it
    spoken = listen(*read_recording(said))
    assert spoken.loud_s > 1.0, spoken  # the Piper utterance, played by Asterisk 16


async def _stasis_start(events: aiohttp.ClientWebSocketResponse, channel: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        async for message in events:
            event: dict[str, Any] = json.loads(message.data)
            if event.get("type") == "StasisStart" and event["channel"]["id"] == channel:
                return event
    raise AssertionError("ARI events websocket closed")


async def _appears(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return path.exists()
