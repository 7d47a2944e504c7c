"""Keyterms and pronunciations where users stand: an assistant created over REST with
``stt_config.keyterms`` and ``tts_config.pronunciations``, a call placed and answered on the
fake PBX, a caller turn spoken. What reaches the providers is read at stand-ins speaking
their wire formats: Deepgram's ``POST /v1/listen`` query carries the keyterms, OpenAI's
``/audio/speech`` is sent the aliased text, while the stored transcript keeps the text as
written. The organization's vocabulary (``PATCH /organization``) joins every call of its
assistants, the assistant's own rule for a word winning; the bounds are 400s naming the key."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from api.spoken_calls import FRAME, SpokenCalls, spoken_calls
from fakes.local_server import LocalServer
from fakes.speech_standin import SpeechStandIn
from fakes.world import DESTINATION, make_settings
from pipeline.synth import silence, voiced
from voicedock.domain.vocabulary import KEYTERMS_MAX
from voicedock.media.codecs import ulaw_encode

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

DEEPGRAM_KEY = "dg-acme-0123456789"
OPENAI_KEY = "sk-acme-0123456789"
GREETING = "Welcome to Acme Dental, this is Nguyen speaking."
HEARD = "Is Dr. Nguyen in on Monday?"
ACME_RULE = {"grapheme": "Acme", "alias": "Ack me"}


@dataclass
class DeepgramStandIn:
    """Deepgram's pre-recorded ``POST /v1/listen`` on loopback: every request's query (its
    repeated parameters kept), answered with ``transcript``."""

    transcript: str = HEARD
    queries: list[list[tuple[str, str]]] = field(default_factory=list)
    _server: LocalServer = field(default_factory=LocalServer)

    @property
    def base_url(self) -> str:
        return self._server.url + "/v1"

    async def __aenter__(self) -> DeepgramStandIn:
        self._server.route("POST", "/v1/listen", self._listen)
        await self._server.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.__aexit__(*exc)

    async def _listen(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Token {DEEPGRAM_KEY}":
            return web.json_response({"err_code": "INVALID_AUTH"}, status=401)
        await request.read()
        self.queries.append(list(request.query.items()))
        alternative = {"transcript": self.transcript, "confidence": 0.98}
        return web.json_response({"results": {"channels": [{"alternatives": [alternative]}]}})

    def values(self, name: str) -> list[str]:
        """The values of ``name`` in the last request's query."""
        assert self.queries, "Deepgram was never asked"
        return [value for key, value in self.queries[-1] if key == name]


@dataclass
class Standing:
    app: SpokenCalls
    deepgram: DeepgramStandIn
    voice: SpeechStandIn


@pytest.fixture
async def standing(tmp_path: Path) -> AsyncIterator[Standing]:
    settings = make_settings(f"sqlite:///{tmp_path / 'terms.db'}")
    settings.egress.allowed_networks = ["127.0.0.1/32"]  # the stand-ins listen on loopback
    async with (
        DeepgramStandIn() as deepgram,
        SpeechStandIn(word_s=0.02) as voice,
        spoken_calls(settings) as app,
    ):
        yield Standing(app, deepgram, voice)


def assistant(standing: Standing, stt: dict[str, Any], tts: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "Front desk",
        "first_message": GREETING,
        "stt_config": {
            "provider": "deepgram",
            "base_url": standing.deepgram.base_url,
            "api_key": DEEPGRAM_KEY,
            **stt,
        },
        "tts_config": {
            "provider": "openai",
            "base_url": standing.voice.base_url,
            "api_key": OPENAI_KEY,
            "voice": "alloy",
            **tts,
        },
    }


async def created(app: SpokenCalls, body: dict[str, Any]) -> str:
    status, saved = await app.send("POST", "/assistants", body)
    assert status == 201, saved
    return str(saved["id"])


async def call_with_one_turn(standing: Standing, assistant_id: str) -> dict[str, Any]:
    """A call of ``assistant_id`` placed and answered; the caller speaks once after the
    greeting was said; the call as ``GET /calls/{id}`` shows it once ended."""
    app, deepgram = standing.app, standing.deepgram
    asked, opened = len(deepgram.queries), len(app.fake.channels)
    call_id = await app.answered({"assistant_id": assistant_id})
    async with asyncio.timeout(5):  # this call's media
        while len(app.fake.channels) == opened:
            await asyncio.sleep(0.005)
    channel = list(app.fake.channels.values())[-1]
    async with asyncio.timeout(5):  # the greeting, played
        while not channel.played:
            await asyncio.sleep(0.005)
    await asyncio.sleep(0.3)
    wire = ulaw_encode(voiced(600) + silence(800))
    for start in range(0, len(wire) - FRAME + 1, FRAME):
        await channel.ws.send_bytes(wire[start : start + FRAME])
        await asyncio.sleep(0.001)
    async with asyncio.timeout(5):  # Deepgram asked, what it heard in the transcript
        while len(deepgram.queries) == asked or not await heard(app, call_id):
            await asyncio.sleep(0.02)
    return await app.ended(call_id)


async def heard(app: SpokenCalls, call_id: str) -> bool:
    status, call = await app.send("GET", f"/calls/{call_id}")
    assert status == 200, call
    return any(m["role"] == "user" for m in call.get("messages") or ())


def spoken_texts(voice: SpeechStandIn) -> list[str]:
    return [str(json.loads(r.body)["input"]) for r in voice.requests]


async def test_the_recognizer_gets_the_keyterms_and_the_voice_says_the_alias(
    standing: Standing,
) -> None:
    app = standing.app
    body = assistant(
        standing,
        {"keyterms": ["Acme Dental", "Nguyen"]},
        {"pronunciations": [{"grapheme": "Nguyen", "alias": "Win"}]},
    )
    assistant_id = await created(app, body)
    status, read = await app.send("GET", f"/assistants/{assistant_id}")
    assert status == 200, read
    assert read["stt_config"]["keyterms"] == ["Acme Dental", "Nguyen"]
    assert read["tts_config"]["pronunciations"] == [{"grapheme": "Nguyen", "alias": "Win"}]

    ended = await call_with_one_turn(standing, assistant_id)

    # Nova-3 (the default model): one keyterm parameter per term, phrases whole.
    assert standing.deepgram.values("keyterm") == ["Acme Dental", "Nguyen"]
    assert standing.deepgram.values("model") == ["nova-3"]
    # The voice says "Win"; the transcript keeps "Nguyen" as written.
    assert spoken_texts(standing.voice)[0] == "Welcome to Acme Dental, this is Win speaking."
    said = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert said[0] == GREETING, ended["messages"]
    heard = [m["content"] for m in ended["messages"] if m["role"] == "user"]
    assert heard == [HEARD], ended["messages"]


async def test_an_earlier_model_gets_single_keywords(standing: Standing) -> None:
    body = assistant(standing, {"model": "nova-2", "keyterms": ["Acme Dental", "Nguyen"]}, {})
    await call_with_one_turn(standing, await created(standing.app, body))
    assert standing.deepgram.values("keywords") == ["Acme", "Dental", "Nguyen"]
    assert standing.deepgram.values("keyterm") == []


async def test_the_organizations_vocabulary_joins_every_call_its_assistant_wins(
    standing: Standing,
) -> None:
    app = standing.app
    # Saved before the organization's vocabulary: its calls take it all the same.
    plain = await created(app, assistant(standing, {}, {}))
    own = await created(
        app,
        assistant(
            standing,
            {"keyterms": ["Molar Express"]},
            {"pronunciations": [{"grapheme": "nguyen", "alias": "Nwen"}]},
        ),
    )
    vocabulary = {
        "keyterms": ["Nguyen", "Acme Dental"],
        "pronunciations": [
            {"grapheme": "Nguyen", "alias": "Win"},
            {"grapheme": "Acme", "alias": "Ack me"},
        ],
    }
    status, org = await app.send("PATCH", "/organization", {"vocabulary": vocabulary})
    assert status == 200, org
    assert org["vocabulary"] == vocabulary
    status, org = await app.send("GET", "/organization")
    assert org["vocabulary"] == vocabulary

    await call_with_one_turn(standing, plain)
    assert standing.deepgram.values("keyterm") == ["Nguyen", "Acme Dental"]
    assert spoken_texts(standing.voice)[0] == "Welcome to Ack me Dental, this is Win speaking."

    before = len(standing.voice.requests)
    await call_with_one_turn(standing, own)
    assert standing.deepgram.values("keyterm") == ["Molar Express", "Nguyen", "Acme Dental"]
    # The assistant's rule for "Nguyen" wins; the organization's "Acme" still applies.
    assert (
        spoken_texts(standing.voice)[before] == "Welcome to Ack me Dental, this is Nwen speaking."
    )

    # null: none again.
    status, org = await app.send("PATCH", "/organization", {"vocabulary": None})
    assert status == 200, org
    assert org["vocabulary"] is None


DESK = {"name": "Desk"}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/assistants",
            {**DESK, "stt_config": {"provider": "deepgram", "keyterms": ["x"] * 101}},
            f"stt_config.keyterms: Expected `array` of length <= {KEYTERMS_MAX}",
        ),
        (
            "/assistants",
            {**DESK, "stt_config": {"provider": "offline", "keyterms": ["a" * 101]}},
            "stt_config.keyterms[0]: Expected `str` of length <= 100",
        ),
        (
            "/assistants",
            {**DESK, "tts_config": {"provider": "openai", "pronunciations": [{"grapheme": "X"}]}},
            "tts_config.pronunciations[0]: a pronunciation needs an alias or a phoneme",
        ),
        (
            "/assistants",
            {
                **DESK,
                "tts_config": {
                    "provider": "piper",
                    "pronunciations": [
                        {"grapheme": "tomato", "phoneme": "təˈmɑːtoʊ", "alphabet": "x-sampa"}
                    ],
                },
            },
            "tts_config.pronunciations[0].alphabet",
        ),
        (
            "/organization",
            {"vocabulary": {"keyterms": ["Acme"], "spellings": []}},
            "vocabulary: unknown field(s): spellings",
        ),
        (
            "/organization",
            {"vocabulary": {"pronunciations": [{"grapheme": "Acme", "alias": ""}]}},
            "vocabulary.pronunciations[0].alias",
        ),
    ],
)
async def test_out_of_bounds_is_a_400_naming_the_key(
    standing: Standing, path: str, body: dict[str, Any], message: str
) -> None:
    method = "POST" if path == "/assistants" else "PATCH"
    status, refused = await standing.app.send(method, path, body)
    assert status == 400, refused
    assert message in refused["message"], refused


async def test_a_speech_to_speech_say_voice_takes_both_pronunciations(standing: Standing) -> None:
    app = standing.app
    say_voice = {
        "provider": "openai",
        "base_url": standing.voice.base_url,
        "api_key": OPENAI_KEY,
        "pronunciations": [{"grapheme": "Nguyen", "alias": "Nwen"}],
    }
    body = {
        "name": "Realtime desk",
        "provider": "xai_realtime",
        "llm_config": {"api_key": "xai-acme-0123456789", "say_voice": say_voice},
    }
    realtime = await created(app, body)
    vocabulary = {"pronunciations": [{"grapheme": "Nguyen", "alias": "Win"}, ACME_RULE]}
    status, org = await app.send("PATCH", "/organization", {"vocabulary": vocabulary})
    assert status == 200, org
    status, placed = await app.send(
        "POST", "/calls/outbound", {"destination": DESTINATION, "assistant_id": realtime}
    )
    assert status == 200, placed
    call = await app.service.store.get_call(None, placed["call_id"])
    assert call is not None
    said = call.assistant_config.llm_config
    assert isinstance(said, dict)
    say_voice_config: Any = said["say_voice"]
    assert say_voice_config["pronunciations"] == [
        {"grapheme": "Nguyen", "alias": "Nwen"},
        ACME_RULE,
    ]
