"""``kill -9`` of the service with live calls on the lab FreeSWITCH, then a restart.

The service runs as a process of its own (``service_process``) on the lab FreeSWITCH; three
calls to the lab's silent party and one from the lab's caller to our number (both record what
they hear) are answered and greeted, the process is killed with SIGKILL, and the legs stay up
at FreeSWITCH; one silent party hangs up meanwhile. Within 10 s of its start the restarted
process (``[calls] resume_after_restart`` is on by default) resumes the three waiting calls: a
new mod_audio_stream stream on the same channel, a ``resumed`` event, the transcript goes on
with the resume line, and each party's recording has the assistant's voice again after the
silent gap; the other call ends ``service-restart``. Ended through the API, no leg of any call
is left at FreeSWITCH. Without resuming, the restarted process hangs every leg up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from deploy.test_restart_recovery import wait_settled
from e2e.audio_helpers import read_recording, transcript
from e2e.conftest import LiveService
from fakes.world import ACME_NUMBERS, SUPPORT_ID
from freeswitch_lab.service_process import service_process
from nodes.node_process import acme_api_key
from pbx.freeswitch.live_service import TERMINAL, until
from process_helpers import free_port
from voicedock.config import DEFAULT_RESUME_MESSAGE
from voicedock.pbx.freeswitch.esl.wire import parse_show_channels_json
from voicedock_lab.errors import LabError
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import SILENT

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(150)]

RECOVERY_WITHIN = 10.0  # seconds from the restarted process's start
TONE_RMS = 300.0  # the assistant's 440 Hz tone (ToneTts); the silent party records ~0


async def _lab_api(lab: LabFreeswitch, command: str) -> str:
    return await asyncio.to_thread(lab.api, command)


async def _channels_of(lab: LabFreeswitch, call_ids: set[str]) -> dict[str, str]:
    """channel uuid -> call id of every FreeSWITCH channel carrying one of ``call_ids``."""
    found: dict[str, str] = {}
    for channel in parse_show_channels_json(await _lab_api(lab, "show channels as json")):
        call_id = (await _lab_api(lab, f"uuid_getvar {channel.uuid} voicedock_call_id")).strip()
        if call_id in call_ids:
            found[channel.uuid] = call_id
    return found


def _api(port: int) -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(total=10)
    return aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}", timeout=timeout)


def _tone_segments(path: Path, window_s: float = 0.05) -> list[tuple[float, float]]:
    """(start, end) seconds of each stretch of the recording where the assistant's tone sounds
    (gaps shorter than 0.5 s joined)."""
    pcm, rate = read_recording(path)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    size = int(rate * window_s)
    windows = samples[: len(samples) // size * size].reshape(-1, size)
    loud = np.sqrt(np.mean(windows**2, axis=1)) > TONE_RMS
    segments: list[tuple[float, float]] = []
    for n in np.flatnonzero(loud):
        start = n * window_s
        if segments and start - segments[-1][1] < 0.5:
            segments[-1] = (segments[-1][0], start + window_s)
        else:
            segments.append((start, start + window_s))
    return segments


def _events(call: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in call["events"] if e["type"] == kind]


@dataclass
class Killed:
    """What the first run left: its API key, the calls and their channels at FreeSWITCH."""

    api: LiveService
    calls: list[str]
    channels: dict[str, str]  # channel uuid -> call id
    at: float  # when it was killed (monotonic)
    caller_leg: str | None  # the lab caller's leg of the inbound call, if any


async def _place_then_kill(
    lab: LabFreeswitch,
    http: aiohttp.ClientSession,
    database: Path,
    port: int,
    log: Path,
    n: int,
    *,
    inbound: bool = False,
) -> Killed:
    """The first run places ``n`` calls to the silent party (and, if ``inbound``, the lab's
    caller calls our number: the last call), each answered and greeted, and is killed with
    SIGKILL; the calls' channels are still up at FreeSWITCH."""
    with service_process(lab, database, port, log) as process:
        await wait_settled(http, "", process, log, time.monotonic())
        key = await acme_api_key(f"sqlite:///{database}")
        api = LiveService(http, None, key)  # type: ignore[arg-type]
        calls: list[str] = []
        for _ in range(n):
            body = {"destination": SILENT, "assistant_id": SUPPORT_ID}
            status, reply = await api.post("/calls/outbound", body)
            assert status == 200, reply
            calls.append(reply["call_id"])
        caller_leg = None
        if inbound:
            caller_leg = await asyncio.to_thread(lab.originate_inbound, ACME_NUMBERS[0])
            calls.append(await _inbound_call_id(api, set(calls)))
        for call_id in calls:  # answered, and the greeting said and stored
            async with asyncio.timeout(15):
                while not transcript(await api.call(call_id), "assistant"):
                    await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the greeting (0.3 s of tone) plays out
        channels = await _channels_of(lab, set(calls))
        assert sorted(channels.values()) == sorted(calls), channels
        process.kill()  # SIGKILL: nothing of voicedock runs any more
        process.wait(timeout=10)
    return Killed(api, calls, channels, time.monotonic(), caller_leg)


async def _inbound_call_id(api: LiveService, outbound: set[str]) -> str:
    status, body = await api.get("/calls")
    assert status == 200, body
    (call_id,) = (c["id"] for c in body["calls"] if c["id"] not in outbound)
    return str(call_id)


async def test_kill_9_then_restart_resumes_the_waiting_calls_on_freeswitch(
    freeswitch_lab: LabFreeswitch, tmp_path: Path
) -> None:
    lab, database, port = freeswitch_lab, tmp_path / "restart.db", free_port()
    channels: dict[str, str] = {}
    try:
        async with _api(port) as http:
            log = tmp_path / "serve-1.log"
            first = await _place_then_kill(lab, http, database, port, log, 3, inbound=True)
            api, calls, channels, killed_at = first.api, first.calls, first.channels, first.at

            await asyncio.sleep(1.5)  # the parties hear silence, the legs stay up
            assert set(await _channels_of(lab, set(calls))) == set(channels)
            resumed_ids, gone_id = [*calls[:2], calls[3]], calls[2]
            # The third party hangs up while voicedock is down.
            (gone_channel,) = (c for c, call_id in channels.items() if call_id == gone_id)
            await _lab_api(lab, f"uuid_kill {gone_channel}")
            del channels[gone_channel]

            second_log = tmp_path / "serve-2.log"
            started = time.monotonic()
            with service_process(lab, database, port, second_log) as process:
                settled: dict[str, dict[str, Any]] = {}
                while time.monotonic() - started < RECOVERY_WITHIN and len(settled) < 4:
                    assert process.poll() is None, second_log.read_text()[-3000:]
                    for call_id in calls:
                        try:
                            call = await api.call(call_id)
                        except aiohttp.ClientConnectionError:
                            break  # not serving yet (recovery runs before the API serves)
                        if _events(call, "resumed") or call["status"] in TERMINAL:
                            settled[call_id] = call
                    await asyncio.sleep(0.1)
                took = time.monotonic() - started
                assert len(settled) == 4, (settled, took, second_log.read_text()[-5000:])
                gone = settled[gone_id]
                assert (gone["status"], gone["end_reason"]) == ("ended", "service-restart"), gone
                for call in (settled[call_id] for call_id in resumed_ids):
                    assert call["status"] == "in-progress", (call, second_log.read_text()[-5000:])
                    (resumed,) = _events(call, "resumed")
                    assert resumed["data"]["gap_seconds"] >= 1.0, resumed
                resumed_at = time.monotonic()

                # The transcript goes on: the greeting, then the resume line after the gap.
                for call_id in resumed_ids:
                    async with asyncio.timeout(15):
                        while len(transcript(call := await api.call(call_id), "assistant")) < 2:
                            await asyncio.sleep(0.1)
                    said = [m["content"] for m in transcript(call, "assistant")]
                    assert said[:2] == ["Hi!", DEFAULT_RESUME_MESSAGE], said
                    kinds = [e["type"] for e in call["events"] if e["type"] != "status"]
                    assert kinds[kinds.index("resumed") + 1] == "transcript", kinds
                # The same channels, nothing new: the calls went on where they were.
                assert set(await _channels_of(lab, set(calls))) == set(channels)
                await asyncio.sleep(6.0)  # the resume line (about 5 s of tone) plays out

                # What each party recorded: the silent party's file names the Call-ID.
                recordings = [lab.recording_of_caller(first.caller_leg or "")]
                for channel, call_id in channels.items():
                    if call_id in calls[:2]:
                        sip = (await _lab_api(lab, f"uuid_getvar {channel} sip_call_id")).strip()
                        recordings.append(lab.recordings_dir / f"{SILENT}-{sip}.wav")
                for call_id in resumed_ids:
                    status, reply = await api.post(
                        f"/calls/{call_id}/control", {"type": "end-call"}
                    )
                    assert status == 200, reply
                    ended = await api.wait_status(call_id, TERMINAL, within=10)
                    assert ended["status"] == "ended", ended
                    assert ended["end_reason"] == "api-end-call", ended

                async def gone() -> bool:
                    return not await _channels_of(lab, set(calls))

                await until(gone, within=10)
                assert process.poll() is None, second_log.read_text()[-3000:]
    finally:
        for channel in channels:  # a failed test leaves no leg behind
            await _lab_api(lab, f"uuid_kill {channel}")

    # What the parties heard: the greeting, silence while voicedock was down, then the
    # assistant again (the resume line).
    gap = resumed_at - killed_at
    for recording in recordings:
        await until(lambda r=recording: r.exists() and r.stat().st_size > 44, within=5)
        segments = _tone_segments(recording)
        assert len(segments) >= 2, (recording.name, segments)
        silences = [b[0] - a[1] for a, b in itertools.pairwise(segments)]
        longest = max(silences)
        assert longest >= gap - 1.0, (segments, gap)  # the gap the restart left
        after = segments[silences.index(longest) + 1 :]
        assert sum(end - start for start, end in after) >= 2.0, segments  # heard again


async def test_kill_9_then_restart_without_resume_hangs_up_the_calls_at_freeswitch(
    freeswitch_lab: LabFreeswitch, tmp_path: Path
) -> None:
    """``[calls] resume_after_restart = false``: the restarted process hangs every leg up within
    10 s of its start (checked at FreeSWITCH) and ends both calls ``service-restart``."""
    lab, database, port = freeswitch_lab, tmp_path / "restart.db", free_port()
    channels: dict[str, str] = {}
    try:
        async with _api(port) as http:
            first = await _place_then_kill(lab, http, database, port, tmp_path / "serve-1.log", 2)
            channels = first.channels
            await asyncio.sleep(1.0)
            assert set(await _channels_of(lab, set(first.calls))) == set(channels)

            log = tmp_path / "serve-2.log"
            started = time.monotonic()
            with service_process(lab, database, port, log, resume=False) as process:

                async def gone() -> bool:
                    assert process.poll() is None, log.read_text()[-3000:]
                    return not await _channels_of(lab, set(first.calls))

                await until(gone, within=RECOVERY_WITHIN)
                took = time.monotonic() - started
                await wait_settled(http, "", process, log, time.monotonic())
                for call_id in first.calls:
                    call = await first.api.call(call_id)
                    assert (call["status"], call["end_reason"]) == ("ended", "service-restart")
                    assert not _events(call, "resumed"), call["events"]
                # Gone for good: nothing comes back a moment later.
                await asyncio.sleep(1.0)
                assert not await _channels_of(lab, set(first.calls)), took
    finally:
        for channel in channels:  # a failed test leaves no leg behind
            with contextlib.suppress(LabError):
                await _lab_api(lab, f"uuid_kill {channel}")
