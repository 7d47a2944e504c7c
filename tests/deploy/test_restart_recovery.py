"""``kill -9`` of the shipped service with live calls, then a restart.

The service runs as shipped (``voicedock serve`` as a subprocess, the compose environment,
PostgreSQL, the lab Asterisk: the ``deployment`` fixture of test_compose_as_shipped). Calls to
the lab's silent party (it records what it hears) are answered and greeted, the service is
killed with SIGKILL, and the legs stay up at the PBX (nobody hangs them up).

* As shipped (``[calls] resume_after_restart`` on), the restarted service resumes, within 10 s
  of its start, every call whose caller is still there: ``in-progress`` with a ``resumed``
  event, the party hears the assistant again (the resume line, in the lab's recording), the
  transcript holds the earlier messages then the resume line, and end-call through the API
  ends it with its legs gone. A call whose caller hung up meanwhile ends ``service-restart``,
  its leftover legs hung up.
* With resuming off, the restarted service hangs every leg up within 10 s (the lab's ARI lists
  none of their channels and bridges, nor the far side's legs) and ends both calls
  ``service-restart``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy.test_compose_as_shipped import (
    Api,
    Deployment,
    deployment,
    get_json,
    serving,
    transcript,
    wait_healthy,
    wait_pbx_connected,
)
from e2e.audio_helpers import (
    SILENT_PARTY,
    read_recording,
    require_offline_speech,
    speech_seconds,
    transcribe,
    words,
)
from voicedock_lab.server import LabAsterisk

__all__ = ["deployment"]  # the fixture, shared with test_compose_as_shipped

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.postgres]

RECOVERY_WITHIN = 10.0  # seconds from the restarted process's start
RESUME_OFF = {"VOICEDOCK_CALLS__RESUME_AFTER_RESTART": "false"}


def lab_auth(lab: LabAsterisk) -> dict[str, str]:
    user, password = lab.ari_credentials
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


async def lab_ids(http: aiohttp.ClientSession, lab: LabAsterisk) -> tuple[set[str], set[str]]:
    """Ids of every channel and bridge the lab Asterisk lists (ARI GET /channels, /bridges)."""
    user, password = lab.ari_credentials
    auth = {"Authorization": aiohttp.encode_basic_auth(user, password)}
    found: list[set[str]] = []
    for what in ("channels", "bridges"):
        async with http.get(f"{lab.ari_url}/{what}", headers=auth) as resp:
            assert resp.status == 200, await resp.text()
            found.append({str(item["id"]) for item in await resp.json()})
    return found[0], found[1]


@pytest.mark.timeout(240)
async def test_kill_9_then_restart_without_resume_hangs_up_the_live_calls_and_ends_them(
    deployment: Deployment, lab: LabAsterisk, tmp_path: Path
) -> None:
    require_offline_speech()  # the shipped assistant speaks with the offline engines
    deployment = dataclasses.replace(deployment, env={**deployment.env, **RESUME_OFF})
    migrate = deployment.run("voicedock", "migrate")
    assert migrate.returncode == 0, migrate.stderr
    created = deployment.run(
        "voicedock", "keys", "create", "--organization", deployment.organization
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]

    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        channels_before, bridges_before = await lab_ids(http, lab)
        first_log = tmp_path / "serve-1.log"
        with serving(deployment, first_log) as process:
            api = Api(http, deployment.api, key)
            await wait_healthy(http, deployment.api, process, first_log)
            await wait_pbx_connected(http, lab, deployment, process, first_log)
            assistants = (await get_json(http, f"{deployment.api}/assistants", key))["assistants"]
            assistant_id = assistants[0]["id"]
            calls = [await api.place(SILENT_PARTY, assistant_id) for _ in range(2)]
            for call_id in calls:
                await api.wait(call_id, lambda c: c["status"] == "in-progress", 30)
            # The media legs are bridged to the callers just after the answer.
            async with asyncio.timeout(15):
                while True:
                    channels, bridges = await lab_ids(http, lab)
                    if len(bridges - bridges_before) == 2:
                        break
                    await asyncio.sleep(0.2)
            assert set(calls) <= channels  # outbound: our call id is the channel id
            process.kill()  # SIGKILL: nothing of voicedock runs any more
            process.wait(timeout=10)

        # The legs outlive the process (the caller would hear silence until they hang up).
        await asyncio.sleep(1.0)
        left_channels, left_bridges = await lab_ids(http, lab)
        assert set(calls) <= left_channels
        assert left_bridges - bridges_before

        second_log = tmp_path / "serve-2.log"
        started = time.monotonic()
        with serving(deployment, second_log) as process:
            ended: dict[str, dict[str, Any]] = {}
            clean = False
            while time.monotonic() - started < RECOVERY_WITHIN:
                assert process.poll() is None, second_log.read_text()[-3000:]
                channels, bridges = await lab_ids(http, lab)
                clean = channels <= channels_before and bridges <= bridges_before
                if clean:
                    break
                await asyncio.sleep(0.1)
            took = time.monotonic() - started
            assert clean, (channels - channels_before, bridges - bridges_before, took)
            await wait_healthy(http, deployment.api, process, second_log)
            api = Api(http, deployment.api, key)
            for call_id in calls:
                ended[call_id] = await api.call(call_id)
            # Every leg is gone for good: nothing comes back a moment later.
            await asyncio.sleep(1.0)
            channels, bridges = await lab_ids(http, lab)
            assert channels <= channels_before
            assert bridges <= bridges_before
            assert process.poll() is None, second_log.read_text()[-3000:]

    for call_id, call in ended.items():
        assert call["status"] == "ended", (call_id, call["status"], call.get("error"))
        assert call["end_reason"] == "service-restart"
        status = [e["data"] for e in call["events"] if e["type"] == "status"]
        assert status[-1] == {"from": "in-progress", "to": "ended", "end_reason": "service-restart"}
        # The transcript the first run stored stays (the greeting, if it was spoken).
        assert all(m["content"] for m in call.get("messages") or [])
    text = second_log.read_text()
    assert SILENT_PARTY not in text
    assert key not in text


async def wait_settled(
    http: aiohttp.ClientSession,
    api: str,
    process: subprocess.Popen[str],
    log: Path,
    started: float,
) -> float:
    """Seconds from ``started`` until the restarted service answers ``/health``."""
    while time.monotonic() - started < 60:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            async with http.get(f"{api}/health") as resp:
                if resp.status == 200:
                    return time.monotonic() - started
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"the restarted service did not answer /health:\n{log.read_text()}")


def events_of(call: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in call["events"] if e["type"] == kind]


@pytest.mark.timeout(300)
async def test_kill_9_then_restart_resumes_the_calls_whose_caller_is_still_there(
    deployment: Deployment, lab: LabAsterisk, tmp_path: Path
) -> None:
    require_offline_speech()
    migrate = deployment.run("voicedock", "migrate")
    assert migrate.returncode == 0, migrate.stderr
    created = deployment.run(
        "voicedock", "keys", "create", "--organization", deployment.organization
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    recordings_before = set(lab.recordings_dir.glob("silent-*-rx.wav"))

    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        channels_before, bridges_before = await lab_ids(http, lab)
        first_log = tmp_path / "serve-1.log"
        with serving(deployment, first_log) as process:
            api = Api(http, deployment.api, key)
            await wait_healthy(http, deployment.api, process, first_log)
            await wait_pbx_connected(http, lab, deployment, process, first_log)
            assistants = (await get_json(http, f"{deployment.api}/assistants", key))["assistants"]
            assistant_id = assistants[0]["id"]
            # Two calls that go on after the restart, one whose caller leaves meanwhile.
            calls = [await api.place(SILENT_PARTY, assistant_id) for _ in range(3)]
            for call_id in calls:  # answered, and the greeting heard and stored
                await api.wait(call_id, lambda c: bool(transcript(c, "assistant")), 60)
            process.kill()  # SIGKILL: nothing of voicedock runs any more
            process.wait(timeout=10)
            killed_at = datetime.now(UTC)

        resumed_ids, gone_id = calls[:2], calls[2]
        left_channels, _ = await lab_ids(http, lab)
        assert set(calls) <= left_channels  # the callers wait (hearing silence)
        # The third caller hangs up while voicedock is down.
        async with http.delete(f"{lab.ari_url}/channels/{gone_id}", headers=lab_auth(lab)) as r:
            assert r.status == 204, await r.text()

        second_log = tmp_path / "serve-2.log"
        started = time.monotonic()
        with serving(deployment, second_log) as process:
            await wait_settled(http, deployment.api, process, second_log, started)
            api = Api(http, deployment.api, key)
            settled: dict[str, dict[str, Any]] = {}
            while time.monotonic() - started < RECOVERY_WITHIN and len(settled) < len(calls):
                for call_id in calls:
                    call = await api.call(call_id)
                    if events_of(call, "resumed") or call["status"] == "ended":
                        settled[call_id] = call
                await asyncio.sleep(0.2)
            took = time.monotonic() - started
            assert set(settled) == set(calls), ({c: settled.get(c) for c in calls}, took)
            for call_id in resumed_ids:
                call = settled[call_id]
                assert call["status"] == "in-progress", (
                    call["status"],
                    call.get("end_reason"),
                    call["events"],
                    second_log.read_text()[-5000:],
                )
                (resumed,) = events_of(call, "resumed")
                # The gap runs from the first run's last known activity, before the kill, to
                # the resume (a restart can take under a second on a quiet machine).
                last_activity = datetime.fromisoformat(resumed["data"]["last_activity_at"])
                assert last_activity <= killed_at, (resumed, killed_at)
                assert resumed["data"]["gap_seconds"] > 0, resumed
            gone = settled[gone_id]
            assert gone["status"] == "ended", gone
            assert gone["end_reason"] == "service-restart", gone

            # The assistant speaks again: the resume line follows the earlier greeting.
            for call_id in resumed_ids:
                call = await api.wait(call_id, lambda c: len(transcript(c, "assistant")) >= 2, 40)
                said = [m["content"] for m in transcript(call, "assistant")]
                assert said[0] == deployment.first_message, said
                assert said[1].startswith("Sorry, we were cut off"), said
                messages = [m["content"] for m in call["messages"]]
                assert messages[:2] == said[:2], messages
                # The gap is marked between what was said before and after it.
                kinds = [e["type"] for e in call["events"] if e["type"] != "status"]
                assert kinds.index("resumed") < len(kinds) - 1, kinds
                assert kinds[kinds.index("resumed") + 1] == "transcript", kinds

            for call_id in resumed_ids:
                ended = await api.end(call_id)
                assert ended["end_reason"] == "api-end-call", ended["end_reason"]
            # Every leg of every call is gone.
            deadline = time.monotonic() + 10
            while True:
                channels, bridges = await lab_ids(http, lab)
                clean = channels <= channels_before and bridges <= bridges_before
                if clean or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert clean, (channels - channels_before, bridges - bridges_before)
            assert process.poll() is None, second_log.read_text()[-3000:]

    # What the resumed calls' parties heard: the greeting, then, after the gap, the resume line.
    heard_texts: list[str] = []
    deadline = time.monotonic() + 15
    fresh: list[Path] = []
    while time.monotonic() < deadline:
        fresh = sorted(set(lab.recordings_dir.glob("silent-*-rx.wav")) - recordings_before)
        if len(fresh) >= len(calls):
            break
        await asyncio.sleep(0.3)
    assert len(fresh) == len(calls), [p.name for p in fresh]
    await asyncio.sleep(1.0)  # MixMonitor closes its files a moment after the hang-up
    for path in fresh:
        pcm, rate = read_recording(path)
        assert speech_seconds(pcm, rate) > 1.0, path.name
        heard_texts.append(await transcribe(pcm, rate))
    heard = [words(text) for text in heard_texts]
    resumed_heard = [w for w in heard if {"sorry", "cut"} <= w]
    assert len(resumed_heard) == 2, heard_texts
    assert all({"hello", "help"} <= w for w in resumed_heard), heard_texts

    text = second_log.read_text()
    for secret in (SILENT_PARTY, key, "cut off"):
        assert secret not in text, f"the service log carries {secret[:4]}…"
