"""``/voices`` over REST: the voices the node speaks, a voice's preview through the node's own
synthesis path, and assistants refused a voice the node cannot speak."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from api.conftest import Api, serving
from api.contract import conforms, statuses
from fakes.local_server import LocalServer, Scripted
from fakes.world import ACME, make_settings
from voicedock.api.api_keys import issue_api_key
from voicedock.domain.records import KeyScope
from voicedock.pipeline.providers.piper_tts import packaged_voice, piper_available

pytestmark = pytest.mark.unit

needs_piper = pytest.mark.skipif(not piper_available(), reason="Piper voice not installed")
PIPER_ID = "piper:en_US-joe-medium"
TEXT = "Thank you for calling, how can I help?"


async def _voices(api: Api, key: str | None = None) -> dict[str, dict[str, object]]:
    resp = await api.client.get("/voices", headers=api.auth(key))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    conforms(body, "VoiceList")
    return {v["id"]: v for v in body["voices"]}


def _wav(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return samples, rate


@needs_piper
async def test_the_installed_piper_voice_is_listed_with_its_sample_rate(api: Api) -> None:
    described = json.loads(Path(f"{packaged_voice()}.json").read_text())
    voice = (await _voices(api))[PIPER_ID]
    assert voice["sample_rate"] == described["audio"]["sample_rate"] == 22050
    assert voice["language"] == "en-US"
    assert voice["tts_config"] == {"provider": "piper", "voice": "en_US-joe-medium"}
    assert voice["cloud"] is False
    assert (await _voices(api, api.globex_key))[PIPER_ID] == voice  # every organization's


async def test_no_cloud_voice_unless_the_operator_configured_it(api: Api) -> None:
    assert not [v for v in (await _voices(api)).values() if v["cloud"]]


@needs_piper
async def test_a_preview_is_the_text_in_the_voice(api: Api) -> None:
    resp = await api.client.post(
        f"/voices/{PIPER_ID}/preview", json={"text": TEXT}, headers=api.auth()
    )
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "audio/wav"
    samples, rate = _wav(await resp.read())
    assert rate == 22050
    seconds = len(samples) / rate
    assert 1.0 < seconds < 6.0, seconds  # eight words
    assert float(np.sqrt(np.mean(samples**2))) > 0.02  # speech, not silence
    # Through the node's synthesis pool and cache, scoped to the organization.
    synthesis = api.service.runner.speech.synthesis
    assert synthesis is not None
    made = synthesis.synthesized
    again = await api.client.post(
        f"/voices/{PIPER_ID}/preview", json={"text": TEXT}, headers=api.auth()
    )
    assert await again.read() == await resp.read()
    assert synthesis.synthesized == made  # the same organization: from the cache
    other = await api.client.post(
        f"/voices/{PIPER_ID}/preview", json={"text": TEXT}, headers=api.auth(api.globex_key)
    )
    assert other.status == 200
    assert synthesis.synthesized > made  # another organization's audio is its own


async def test_an_espeak_voice_previews_at_its_rate(api: Api) -> None:
    voices = await _voices(api)
    if "espeak-ng:en-us" not in voices:
        pytest.skip("espeak-ng not installed")
    resp = await api.client.post(
        "/voices/espeak-ng:en-us/preview", json={"text": "Hello there."}, headers=api.auth()
    )
    assert resp.status == 200, await resp.text()
    samples, rate = _wav(await resp.read())
    assert rate == voices["espeak-ng:en-us"]["sample_rate"] == 22050
    assert 0.3 < len(samples) / rate < 4.0
    assert float(np.abs(samples).max()) > 0.05


async def test_preview_errors_keep_the_documented_shape(api: Api) -> None:
    h = api.auth()
    for voice_id in ("piper:nobody", "piper:..%2F..%2Fetc%2Fpasswd", "espeak-ng:-v%2Fbin%2Fsh"):
        resp = await api.client.post(f"/voices/{voice_id}/preview", json={"text": "Hi."}, headers=h)
        assert resp.status == 404, voice_id
        body = await resp.json()
        assert body["error"] == "Voice not found", voice_id  # looked up, never used as a path
        conforms(body, "Error")
    too_long = await api.client.post(
        f"/voices/{PIPER_ID}/preview", json={"text": "word " * 100}, headers=h
    )
    assert too_long.status == 400
    assert "text" in (await too_long.json())["message"]
    for bad in ({}, {"text": ""}, {"text": "Hi.", "voice": "x"}, {"text": 3}):
        resp = await api.client.post(f"/voices/{PIPER_ID}/preview", json=bad, headers=h)
        assert resp.status == 400, bad
    assert {400, 401, 404, 413, 415, 429, 503} <= statuses("/voices/{id}/preview", "post")


async def test_keys_and_scopes(api: Api) -> None:
    assert (await api.client.get("/voices")).status == 401
    assert (
        await api.client.post(f"/voices/{PIPER_ID}/preview", json={"text": "Hi."})
    ).status == 401
    reader, _ = await issue_api_key(api.service.store, ACME, "ro", KeyScope.READ_ONLY)
    assert (await api.client.get("/voices", headers=api.auth(reader))).status == 200
    refused = await api.client.post(
        f"/voices/{PIPER_ID}/preview", json={"text": "Hi."}, headers=api.auth(reader)
    )
    assert refused.status == 403  # a read-only key reads; a preview spends the node's CPU


async def test_an_assistant_names_only_a_voice_the_node_speaks(api: Api) -> None:
    h = api.auth()
    for tts in (
        {"provider": "piper", "voice": "en_US-nobody-low"},
        {"provider": "espeak-ng", "voice": "../../tmp/voice"},
        {"provider": "espeak-ng", "voice": "xx-nowhere"},
        {"provider": "openai", "voice": "robot", "api_key": "sk-own"},
    ):
        resp = await api.client.post(
            "/assistants", json={"name": "Voice", "tts_config": tts}, headers=h
        )
        assert resp.status == 400, (tts, await resp.text())  # it was 422
        body = await resp.json()
        conforms(body, "Error")
        assert body["error"] == "Unresolvable configuration"
        assert "tts_config.voice" in body["message"], body
    voices = await _voices(api)
    for voice in voices.values():
        if voice["cloud"]:
            continue
        resp = await api.client.post(
            "/assistants", json={"name": "Voice", "tts_config": voice["tts_config"]}, headers=h
        )
        assert resp.status == 201, (voice, await resp.text())
        break
    else:
        pytest.skip("no offline voice installed")


async def test_a_configured_cloud_voice_is_listed_and_previewed(tmp_path: Path) -> None:
    pcm = (np.sin(np.arange(24000) / 5) * 8000).astype("<i2").tobytes()  # one second
    fake = LocalServer()
    fake.route("POST", "/v1/audio/speech")
    async with fake:
        fake.replies.append(Scripted(chunks=[pcm]))
        settings = make_settings(f"sqlite:///{tmp_path / 'voices.db'}")
        settings.speech.openai_api_key = "sk-operator"
        settings.speech.openai_base_url = f"{fake.url}/v1"
        async with serving(settings) as api:
            voice = (await _voices(api))["openai:coral"]
            assert voice["sample_rate"] == 24000
            assert voice["cloud"] is True
            resp = await api.client.post(
                "/voices/openai:coral/preview", json={"text": "Hello."}, headers=api.auth()
            )
            assert resp.status == 200, await resp.text()
            samples, rate = _wav(await resp.read())
            assert rate == 24000
            assert len(samples) == 24000
            (request,) = fake.requests
            assert json.loads(request.body)["voice"] == "coral"
            assert request.headers["Authorization"] == "Bearer sk-operator"
            fake.replies.append(Scripted(status=500, chunks=[b"{}"]))
            failed = await api.client.post(
                "/voices/openai:coral/preview", json={"text": "Again."}, headers=api.auth()
            )
            assert failed.status == 503
            assert (await failed.json())["error"] == "Voice unavailable"
            assert "Retry-After" in failed.headers


async def test_the_operators_elevenlabs_voices_are_listed_and_previewed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    voice_id = "JBFqnCBsd6RMkjVDRZzb"
    account = {
        "voices": [
            {"voice_id": voice_id, "name": "George", "labels": {"language": "en"}},
            {"voice_id": "../../admin", "name": "Not an id"},
        ]
    }
    pcm = (np.sin(np.arange(16000) / 4) * 8000).astype("<i2").tobytes()
    fake = LocalServer()
    fake.route("GET", "/v1/voices")
    fake.route("POST", f"/v1/text-to-speech/{voice_id}/stream")
    async with fake:
        fake.replies.append(Scripted(chunks=[json.dumps(account).encode()]))
        fake.replies.append(Scripted(chunks=[pcm]))
        monkeypatch.setattr("voicedock.pipeline.providers.elevenlabs.ELEVENLABS_BASE_URL", fake.url)
        settings = make_settings(f"sqlite:///{tmp_path / 'voices.db'}")
        settings.speech.elevenlabs_api_key = "xi-operator-voices-test"
        settings.egress.allow_loopback = True  # the stand-in server is on loopback
        async with serving(settings) as api:
            voices = await _voices(api)
            eleven = [v for v in voices.values() if v["provider"] == "elevenlabs"]
            assert eleven == [voices[f"elevenlabs:{voice_id}"]]  # the odd id is not listed
            assert eleven[0]["name"] == "George"
            assert eleven[0]["language"] == "en"
            assert eleven[0]["sample_rate"] == 16000
            await _voices(api)  # kept a while: ElevenLabs is not asked again
            assert [r.path for r in fake.requests] == ["/v1/voices"]
            resp = await api.client.post(
                f"/voices/elevenlabs:{voice_id}/preview", json={"text": "Hi."}, headers=api.auth()
            )
            assert resp.status == 200, await resp.text()
            samples, rate = _wav(await resp.read())
            assert rate == 16000
            assert len(samples) == 16000
            asked = fake.requests[-1]
            assert asked.headers["xi-api-key"] == "xi-operator-voices-test"
            assert asked.query == {"output_format": "pcm_16000"}


@needs_piper
async def test_a_preview_without_the_synthesis_pool(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'voices.db'}")
    settings.speech.presynthesis = False  # no node pool: the voice's own worker thread
    async with serving(settings) as api:
        assert api.service.runner.speech.synthesis is None
        resp = await api.client.post(
            f"/voices/{PIPER_ID}/preview", json={"text": "Hello."}, headers=api.auth()
        )
        assert resp.status == 200, await resp.text()
        samples, rate = _wav(await resp.read())
        assert rate == 22050
        assert 0.3 < len(samples) / rate < 3.0
