"""A tenant's speech settings never reach the host: what an organization may set per assistant
is an explicit list (``domain/tenant_provider_fields.py``); paths, cache directories, threads,
devices, compute types and synthesis rates are the operator's (``[speech]``).

Each attack goes through REST on the service configured from ``voicedock.example.toml`` on the
lab Asterisk, and checks what the operator would: the directory a tenant named still holds its
files, the PBX dialled nothing, nothing was stored, and the node loaded no model the operator
did not configure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from e2e.audio_helpers import SILENT_PARTY, require_offline_speech
from tenancy.conftest import ORGANIZATION, Tenants
from voicedock.pipeline.providers.whisper import stt as whisper_stt
from voicedock_lab.server import LabAsterisk

pytestmark = pytest.mark.asterisk

EXAMPLE_ASSISTANT = "Customer Support"  # voicedock.example.toml [[assistants]]
EXAMPLE_NUMBER = "+31850835037"  # its [[numbers]] entry, answered by that assistant


def calls_processed(lab: LabAsterisk) -> int:
    """Asterisk's count of calls it has handled since it started."""
    found = re.search(r"(\d+) calls? processed", lab.cli("core show channels count"))
    assert found is not None
    return int(found.group(1))


def victim(tmp_path: Path) -> Path:
    """A directory of the operator's with data in it (what a tenant tries to empty)."""
    directory = tmp_path / "operator-data"
    directory.mkdir()
    (directory / "voicedock.db").write_text("the operator's data")
    return directory


def assert_untouched(directory: Path) -> None:
    assert sorted(p.name for p in directory.iterdir()) == ["voicedock.db"]
    assert (directory / "voicedock.db").read_text() == "the operator's data"


async def example_assistant(tenants: Tenants) -> dict[str, Any]:
    status, body = await tenants.service.get("/assistants")
    assert status == 200, body
    (found,) = [a for a in body["assistants"] if a["name"] == EXAMPLE_ASSISTANT]
    return dict(found)


async def attempt(tenants: Tenants, entry: str, section: dict[str, Any]) -> tuple[int, Any]:
    """Send a provider section through one of the ways tenant configuration enters."""
    service = tenants.service
    config = {"first_message": "Hello.", **section}
    if entry == "transient assistant":
        body = {"destination": SILENT_PARTY, "assistant": config}
        return await service.post("/calls/outbound", body)
    if entry == "assistant_override":
        saved = await example_assistant(tenants)
        body = {"destination": SILENT_PARTY, "assistant_id": saved["id"]}
        return await service.post("/calls/outbound", {**body, "assistant_override": config})
    if entry == "POST /assistants":
        return await service.post("/assistants", {"name": "Mine", **config})
    if entry == "PATCH /assistants":
        saved = await example_assistant(tenants)
        resp = await service.client.patch(
            f"/assistants/{saved['id']}", json=config, headers=service.auth()
        )
        return resp.status, await resp.json()
    assert entry == "POST /campaigns"
    body = {"name": "Spring", "assistant": config, "contacts": [{"destination": SILENT_PARTY}]}
    return await service.post("/campaigns", body)


ENTRIES = (
    "transient assistant",
    "assistant_override",
    "POST /assistants",
    "PATCH /assistants",
    "POST /campaigns",
)


@pytest.mark.parametrize("entry", ENTRIES)
async def test_a_cache_dir_naming_the_operator_s_data_is_refused_and_the_data_kept(
    tenants: Tenants, lab: LabAsterisk, tmp_path: Path, entry: str
) -> None:
    directory = victim(tmp_path)
    before = calls_processed(lab)
    saved = await example_assistant(tenants)
    section = {"stt_config": {"provider": "offline", "cache_dir": str(directory)}}
    status, body = await attempt(tenants, entry, section)
    assert status == 400, body
    assert body["error"] == "Bad request"
    assert "stt_config.cache_dir is set by the operator, not per assistant" in body["message"]
    await asyncio.sleep(0.5)  # a call placed anyway would be ringing by now
    assert calls_processed(lab) == before
    status, calls = await tenants.service.get("/calls")
    assert calls["calls"] == []
    assert await example_assistant(tenants) == saved
    status, listed = await tenants.service.get("/assistants")
    assert [a["name"] for a in listed["assistants"]] == [EXAMPLE_ASSISTANT]
    assert_untouched(directory)


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ({"stt_config": {"model_path": "/etc"}}, "stt_config.model_path is set by the operator"),
        ({"stt_config": {"cpu_threads": 64}}, "stt_config.cpu_threads is set by the operator"),
        ({"stt_config": {"compute_type": "float32"}}, "stt_config.compute_type is set by the"),
        ({"stt_config": {"device": "cuda"}}, "stt_config.device is set by the operator"),
        ({"tts_config": {"sample_rate": 10**9}}, "tts_config.sample_rate is set by the operator"),
        ({"tts_config": {"provider": "piper", "model_path": "/x"}}, "tts_config.model_path is"),
        ({"stt_config": {"provider": "offline", "beam_size": 500}}, "stt_config.beam_size must"),
        ({"stt_config": {"provider": "offline", "shell": "x"}}, "stt_config.shell is not a"),
        ({"llm_config": {"provider": "openai", "max_tokens": 10**9}}, "llm_config.max_tokens"),
        ({"tts_config": {"whatever": 1}}, "tts_config.whatever is not a setting"),
    ],
)
async def test_host_settings_unknown_keys_and_unbounded_values_are_refused_naming_the_key(
    tenants: Tenants, lab: LabAsterisk, section: dict[str, Any], named: str
) -> None:
    before = calls_processed(lab)
    for entry in ("transient assistant", "POST /assistants"):
        status, body = await attempt(tenants, entry, section)
        assert status == 400, (entry, body)
        assert named in body["message"], (entry, body)
    assert calls_processed(lab) == before


async def test_a_speech_to_speech_section_and_its_say_voice_are_bounded_too(
    tenants: Tenants,
) -> None:
    realtime = {"provider": "xai_realtime", "llm_config": {"sample_rate": 192000}}
    status, body = await tenants.service.post("/assistants", {"name": "S2S", **realtime})
    assert status == 400
    assert "llm_config.sample_rate is set by the operator" in body["message"]
    say = {"provider": "espeak-ng", "voice": "en-us", "executable": "/bin/sh"}
    realtime = {"provider": "xai_realtime", "llm_config": {"say_voice": say}}
    status, body = await tenants.service.post("/assistants", {"name": "S2S", **realtime})
    assert status == 400, body  # the operator's engine refuses it: Unresolvable configuration
    assert body["error"] == "Unresolvable configuration"
    assert "llm_config.say_voice.executable is set by the operator" in body["message"]


async def test_what_an_organization_may_set_is_still_accepted(tenants: Tenants) -> None:
    config = {
        "name": "Tuned",
        "stt_config": {"provider": "offline", "language": "nl", "beam_size": 2},
        "tts_config": {"provider": "espeak-ng", "voice": "nl", "words_per_minute": 180},
        "llm_config": {"provider": "openai", "model": "gpt-4o", "temperature": 0.3},
    }
    status, body = await tenants.service.post("/assistants", config)
    assert status == 201, body
    assert body["stt_config"] == config["stt_config"]


@pytest.mark.e2e
async def test_an_assistant_stored_with_host_settings_cannot_use_them_on_a_call(
    tenants: Tenants, lab: LabAsterisk, tmp_path: Path
) -> None:
    """Defense in depth: the example's assistant as an older version may have stored it (the
    cache directory and a thread count of its own) answers an inbound call whose caller
    speaks; Whisper transcribes with the operator's settings, the directory keeps its files
    and no model of the tenant's settings is loaded."""
    require_offline_speech()
    directory = victim(tmp_path)
    store = tenants.service.service.store
    org = await store.get_organization_by_name(ORGANIZATION)
    assert org is not None
    (saved,) = [a for a in await store.list_assistants(org.id) if a.name == EXAMPLE_ASSISTANT]
    hostile = {"provider": "offline", "cache_dir": str(directory), "cpu_threads": 3}
    async with store.transaction() as tx:
        config = msgspec.structs.replace(saved.config, stt_config=hostile)
        await tx.update_assistant(dataclasses.replace(saved, config=config))

    lab.originate_inbound(EXAMPLE_NUMBER)  # the caller says "hello world", then thanks
    call_id = await _inbound_call(tenants)
    heard = await _caller_words(tenants, call_id)
    await tenants.service.post(f"/calls/{call_id}/control", {"type": "end-call"})
    assert heard, "the caller's words were never transcribed"
    assert_untouched(directory)
    loaded = list(whisper_stt._models)
    assert loaded
    # Keys: (path, device, compute type, threads, workers); the tenant's 3 threads never.
    assert all(threads != 3 for *_, threads, _workers in loaded), loaded


async def _inbound_call(tenants: Tenants, within: float = 15.0) -> str:
    async with asyncio.timeout(within):
        while True:
            _, body = await tenants.service.get("/calls")
            if body["calls"]:
                return str(body["calls"][0]["id"])
            await asyncio.sleep(0.2)


async def _caller_words(tenants: Tenants, call_id: str, within: float = 30.0) -> list[str]:
    """The caller's transcribed turns once there is one (empty if the call ends first)."""
    async with asyncio.timeout(within):
        while True:
            call = await tenants.service.call(call_id)
            said = [m["content"] for m in call["messages"] if m["role"] == "user"]
            if said or call["status"] in ("ended", "failed"):
                return said
            await asyncio.sleep(0.2)
