"""Voice previews as one organization would use them to hurt another, over REST on the real
app: previews are the lowest priority of the node's synthesis pool (a live call's sentence goes
before every queued preview), bounded per organization and per node (429 with Retry-After),
never evict a call's cached greeting, and speak a cloud voice with the key the organization's
call would use (``[byok]``); ``GET /voices`` shows the operator's cloud voices only to an
organization that may use them.

The live speech is what the call runner does for a call: the call's TTS built from its
assistant (``build_tts``) and spoken through the runner's own ``NodeSynthesis``
(``speech_for``, ``prepare`` while the call rings).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import ClientResponse

from api.conftest import Api, serving
from api.contract import conforms, statuses
from fakes.local_server import LocalServer, Scripted
from fakes.world import ACME, GLOBEX, make_settings, org_id
from voicedock.calls.live.providers import build_tts
from voicedock.config import Settings
from voicedock.domain.assistant_config import config_of
from voicedock.pipeline.providers.base import Tts
from voicedock.pipeline.providers.piper_tts import piper_available
from voicedock.pipeline.speaking.synthesis import NodeSynthesis

pytestmark = pytest.mark.unit

needs_piper = pytest.mark.skipif(not piper_available(), reason="Piper voice not installed")
PIPER_ID = "piper:en_US-joe-medium"
PREVIEW = "/voices/{}/preview"
GLOBEX_ID = org_id(GLOBEX)
ACME_ID = org_id(ACME)
OPERATOR_OPENAI = "sk-operator-0123456789"
ACME_OPENAI = "sk-acme-own-0123456789wxyz"


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (the 30 s guard only stops a test that would hang)."""
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.005)


def settings_at(tmp_path: Path) -> Settings:
    return make_settings(f"sqlite:///{tmp_path / 'previews.db'}")


def synthesis_of(api: Api) -> NodeSynthesis:
    synthesis = api.service.runner.speech.synthesis
    assert synthesis is not None
    return synthesis


def call_voice(api: Api) -> Tts:
    """A call's TTS, as the runner builds it from the call's assistant: the node's Piper."""
    speech = api.service.settings.speech
    return build_tts(
        config_of({"tts_config": {"provider": "piper"}}), speech, api.service.webhooks.egress
    )


@asynccontextmanager
async def busy_worker(synthesis: NodeSynthesis) -> AsyncIterator[None]:
    """The pool's one worker held by a call's sentence until the block ends."""
    release = threading.Event()
    job = synthesis.pool.submit(lambda: release.wait(30))
    await until(lambda: synthesis.pool.running == 1)
    try:
        yield
    finally:
        release.set()
        await job.future


def previewing(api: Api, text: str, key: str | None = None) -> asyncio.Task[ClientResponse]:
    return asyncio.ensure_future(
        api.client.post(PREVIEW.format(PIPER_ID), json={"text": text}, headers=api.auth(key))
    )


async def spoken(tts: Tts, text: str) -> bytes:
    return b"".join([chunk async for chunk in tts.synthesize(text)])


@needs_piper
async def test_previews_past_the_organizations_and_the_nodes_bound_are_refused(
    tmp_path: Path,
) -> None:
    settings = settings_at(tmp_path)
    settings.speech.synthesis_workers = 1
    settings.limits.previews_per_organization = 2
    settings.limits.previews_per_node = 3
    async with serving(settings) as api:
        synthesis = synthesis_of(api)
        async with busy_worker(synthesis):
            first = [previewing(api, f"Preview number {n}.") for n in (1, 2)]
            await until(lambda: synthesis.pool.waiting == 2)
            third = previewing(api, "One too many.")
            # Refused at once; before, it queued behind the others (never refused).
            await until(lambda: third.done() or synthesis.pool.waiting > 2)
            assert third.done()
            refused = third.result()
            assert refused.status == 429, await refused.text()
            assert refused.headers["Retry-After"] == "5"
            body = await refused.json()
            conforms(body, "Error")
            assert body["error"] == "Too many previews"
            assert "this organization has 2 voice previews under way" in body["message"]
            # Another organization has its own bound; the node's is 3 in all.
            other = previewing(api, "Globex hears this.", api.globex_key)
            await until(lambda: synthesis.pool.waiting == 3)
            full = await previewing(api, "Globex again.", api.globex_key)
            assert full.status == 429
            assert "this node has too many voice previews" in (await full.json())["message"]
            assert "Retry-After" in full.headers
        for done in [*first, other]:
            assert (await done).status == 200
        again = await previewing(api, "Room again.")  # the previews ended: room again
        assert again.status == 200
    assert {400, 403, 422, 429} <= statuses("/voices/{id}/preview", "post")


@needs_piper
async def test_another_organizations_live_sentence_goes_before_queued_previews(
    tmp_path: Path,
) -> None:
    settings = settings_at(tmp_path)
    settings.speech.synthesis_workers = 1  # one worker: the order is the pool's alone
    settings.limits.previews_per_organization = 20  # the operator lets many through
    settings.limits.previews_per_node = 20
    async with serving(settings) as api:
        synthesis = synthesis_of(api)
        call = synthesis.speech_for(call_voice(api), GLOBEX_ID)
        async with busy_worker(synthesis):
            previews = [previewing(api, f"Acme preview {n}.") for n in range(20)]
            await until(lambda: synthesis.pool.waiting == 20)
            live = asyncio.ensure_future(spoken(call, "Your table is ready."))
            await until(lambda: synthesis.pool.waiting == 21)
        audio = await live
        assert audio
        # The call's sentence was the first synthesized once the worker was free: before, the
        # twenty previews (queued first, at the call's priority) went before it.
        assert synthesis.synthesized == 1
        assert not any(p.done() for p in previews)
        assert [(await p).status for p in previews] == [200] * 20


@needs_piper
async def test_a_calls_cached_greeting_survives_many_previews(tmp_path: Path) -> None:
    settings = settings_at(tmp_path)
    settings.speech.synthesis_cache_mb = 1  # about 24 s of a preview's 22 kHz audio
    greeting = "Thank you for calling Globex, how can I help you today?"
    async with serving(settings) as api:
        synthesis = synthesis_of(api)
        voice = call_voice(api)
        held = synthesis.prepare(voice, GLOBEX_ID, greeting)  # while the call rings
        await until(lambda: synthesis.ready(voice, GLOBEX_ID, greeting))
        held.release()
        made = synthesis.synthesized
        long_text = (
            "This is the {} preview of a long text, spoken so that the voice can be heard "
            "over many words, with names and numbers, like one two three four five six, and "
            "it goes on until the organization has heard enough of it to choose this voice "
            "for the assistant that answers its customers."
        )
        for nth in ("first", "second", "third"):  # 2 MB of audio in all
            resp = await previewing(api, long_text.format(nth))
            assert resp.status == 200, await resp.text()
        # Before, the previews filled the shared cache and evicted the greeting.
        assert synthesis.ready(voice, GLOBEX_ID, greeting)
        spoken_before = synthesis.synthesized
        assert spoken_before > made
        assert await spoken(synthesis.speech_for(voice, GLOBEX_ID), greeting)
        assert synthesis.synthesized == spoken_before  # answered: from the cache


@needs_piper
async def test_a_preview_the_calls_leave_no_room_for_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("voicedock.calls.organization_voices.PREVIEW_TIMEOUT_S", 0.5)
    settings = settings_at(tmp_path)
    settings.speech.synthesis_workers = 1
    async with serving(settings) as api:
        synthesis = synthesis_of(api)
        async with busy_worker(synthesis):  # a call's speech all along
            resp = await previewing(api, "Nobody has time for me.")
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "5"
            body = await resp.json()
            assert body["error"] == "Voice unavailable"
            assert "busy with calls" in body["message"]
            assert synthesis.pool.waiting == 0  # its sentence no longer waits
        monkeypatch.undo()  # the usual wait: a real synthesis on a busy machine may take 0.5 s
        assert (await previewing(api, "Now there is room.")).status == 200


# ── a cloud voice's preview obeys [byok] ────────────────────────────────────────────────
def _pcm(samples: int) -> bytes:
    return (np.sin(np.arange(samples) / 5) * 8000).astype("<i2").tobytes()


@asynccontextmanager
async def openai_node(tmp_path: Path, mode: str) -> AsyncIterator[tuple[Api, LocalServer]]:
    """The node with the operator's OpenAI key on a local stand-in of the speech API, under
    ``[byok] mode``."""
    fake = LocalServer()
    fake.route("POST", "/v1/audio/speech")
    async with fake:
        settings = settings_at(tmp_path)
        settings.speech.openai_api_key = OPERATOR_OPENAI
        settings.speech.openai_base_url = f"{fake.url}/v1"
        settings.byok.mode = mode
        async with serving(settings) as api:
            yield api, fake


async def store_key(api: Api, body: dict[str, Any]) -> None:
    resp = await api.client.post("/provider-keys", json=body, headers=api.auth())
    assert resp.status == 201, await resp.text()


async def voice_ids(api: Api, key: str | None = None) -> set[str]:
    resp = await api.client.get("/voices", headers=api.auth(key))
    assert resp.status == 200
    body = await resp.json()
    conforms(body, "VoiceList")
    return {v["id"] for v in body["voices"]}


async def preview(api: Api, voice: str, key: str | None = None, **extra: str) -> ClientResponse:
    return await api.client.post(
        PREVIEW.format(voice), json={"text": "Hello.", **extra}, headers=api.auth(key)
    )


async def test_byok_required_a_cloud_preview_speaks_with_the_organizations_key(
    tmp_path: Path,
) -> None:
    async with openai_node(tmp_path, "required") as (api, fake):
        await store_key(api, {"name": "own", "provider": "openai", "api_key": ACME_OPENAI})
        await store_key(api, {"name": "eleven", "provider": "elevenlabs", "api_key": "x" * 20})
        assert "openai:coral" in await voice_ids(api)  # it holds an OpenAI key
        assert not any(v.startswith("openai:") for v in await voice_ids(api, api.globex_key))
        # Without naming its key: refused as its assistant would be (before: the operator's).
        refused = await preview(api, "openai:coral")
        assert refused.status == 400, await refused.text()
        body = await refused.json()
        conforms(body, "Error")
        assert body["error"] == "Provider key required"
        assert "api_key_ref is required" in body["message"]
        for wrong, why in (("nobody", "no provider key named"), ("eleven", "is for elevenlabs")):
            resp = await preview(api, "openai:coral", api_key_ref=wrong)
            assert resp.status == 422
            assert why in (await resp.json())["message"]
        assert fake.requests == []  # nothing reached the provider
        fake.replies.append(Scripted(chunks=[_pcm(24000)]))
        answered = await preview(api, "openai:coral", api_key_ref="own")
        assert answered.status == 200, await answered.text()
        (asked,) = fake.requests
        assert asked.headers["Authorization"] == f"Bearer {ACME_OPENAI}"
        assert json.loads(asked.body)["voice"] == "coral"
        # Globex holds no key: the voice is not its to use, as an unknown voice.
        hidden = await preview(api, "openai:coral", api.globex_key)
        assert hidden.status == 404
        assert (await hidden.json())["error"] == "Voice not found"


async def test_byok_off_and_allowed_cloud_previews(tmp_path: Path) -> None:
    async with openai_node(tmp_path, "off") as (api, fake):
        assert "openai:coral" in await voice_ids(api, api.globex_key)  # the operator's key
        refused = await preview(api, "openai:coral", api_key_ref="own")
        assert refused.status == 403
        assert (await refused.json())["error"] == "Provider keys disabled"
        fake.replies.append(Scripted(chunks=[_pcm(2400)]))
        assert (await preview(api, "openai:coral")).status == 200
        assert fake.requests[-1].headers["Authorization"] == f"Bearer {OPERATOR_OPENAI}"
    async with openai_node(tmp_path / "allowed", "allowed") as (api, fake):
        await store_key(api, {"name": "own", "provider": "openai", "api_key": ACME_OPENAI})
        for ref, bearer in ((None, OPERATOR_OPENAI), ("own", ACME_OPENAI)):
            fake.replies.append(Scripted(chunks=[_pcm(2400)]))
            resp = await preview(api, "openai:coral", **({"api_key_ref": ref} if ref else {}))
            assert resp.status == 200, await resp.text()
            assert fake.requests[-1].headers["Authorization"] == f"Bearer {bearer}"


async def test_the_operators_elevenlabs_account_is_shown_only_where_it_may_be_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    voice_id = "cgSgspJ2msm6clMCkdW9"
    OWN = "xi-acme-own-0123456789"
    account = {"voices": [{"voice_id": voice_id, "name": "Jessica", "labels": {}}]}
    fake = LocalServer()
    fake.route("GET", "/v1/voices")
    fake.route("POST", f"/v1/text-to-speech/{voice_id}/stream")
    async with fake:
        monkeypatch.setattr("voicedock.pipeline.providers.elevenlabs.ELEVENLABS_BASE_URL", fake.url)
        for mode in ("required", "allowed"):
            fake.replies.append(Scripted(chunks=[json.dumps(account).encode()]))
            settings = make_settings(f"sqlite:///{tmp_path / f'{mode}.db'}")
            settings.speech.elevenlabs_api_key = f"xi-operator-account-{mode}"
            settings.egress.allow_loopback = True  # the stand-in server is on loopback
            settings.byok.mode = mode
            async with serving(settings) as api:
                await store_key(api, {"name": "eleven", "provider": "elevenlabs", "api_key": OWN})
                listed = [
                    f"elevenlabs:{voice_id}" in await voice_ids(api, key)
                    for key in (api.acme_key, api.globex_key)
                ]
                fake.replies.append(Scripted(chunks=[_pcm(1600)]))
                previewed = await preview(api, f"elevenlabs:{voice_id}", api_key_ref="eleven")
            if mode == "required":
                # The operator's account is not the organizations' to use, even with a key of
                # their own: neither lists it, a preview is a 404; ElevenLabs is not even asked.
                assert listed == [False, False]
                assert previewed.status == 404
                assert fake.requests == []
                fake.replies.clear()
            else:  # the organizations' calls may speak with the operator's account
                assert listed == [True, True]
                assert previewed.status == 200
                assert fake.requests[-1].headers["xi-api-key"] == OWN  # the key it named
