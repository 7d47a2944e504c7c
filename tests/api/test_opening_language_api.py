"""The language a call opens in, where users stand: an assistant listing ``de`` with
``calling_codes`` ``["49"]`` and a German ``first_message``, placed over REST to a German
number, greets with that message in the German voice, records it as ``de`` and asks the model
in German from the first turn; the same assistant calling a Dutch number greets in its own
language. An inbound call on a number whose record says ``de`` (``PATCH /phone-numbers``)
greets in German whatever country calls. Calling codes and a number's language out of
bounds are 400s naming the key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api.spoken_calls import SPEECH, SpokenCalls, spoken_calls
from fakes.llm_standin import LlmStandIn
from fakes.world import ACME_NUMBERS, DESTINATION, make_settings, number_id
from pipeline.fakes import FakeTts
from voicedock.config import Settings
from voicedock.domain.assistant_config import TtsConfig
from voicedock.egress import Egress
from voicedock.pbx.base import InboundCall
from voicedock.pipeline.providers.registry import tts_registry

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

GERMAN_NUMBER = "+493012345678"
AUSTRIAN_NUMBER = "+4315123456"
GREETING = "Hello, Acme Dental."
GERMAN_GREETING = "Guten Tag, Acme Dental."
GERMAN_LINE = "Antworte auf Deutsch."
GERMAN = {
    "language": "de",
    "voice": {"voice": "de-voice"},
    "prompt": GERMAN_LINE,
    "first_message": GERMAN_GREETING,
    "calling_codes": ["43", "49"],
}


class Voices:
    """The fake voices a call made, by the voice each speaks (its own: ``own``)."""

    def __init__(self) -> None:
        self.made: list[tuple[str, FakeTts]] = []

    def __call__(self, config: TtsConfig, _egress: Egress | None) -> FakeTts:
        tts = FakeTts(8000, ms_per_char=1)
        self.made.append((config.voice or "own", tts))
        return tts

    def said(self, voice: str) -> list[str]:
        return [text for name, tts in self.made if name == voice for text in tts.texts]


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    async with LlmStandIn(reply="Gerne.") as standin:
        yield standin


def settings_of(tmp_path: Path) -> Settings:
    settings = make_settings(f"sqlite:///{tmp_path / 'opening.db'}")
    settings.egress.allowed_networks = ["127.0.0.1/32"]  # the LLM stand-in
    settings.policy.allowed_countries = ["NL", "DE", "AT"]
    return settings


def assistant(llm: LlmStandIn) -> dict[str, Any]:
    return {
        "name": "Desk",
        "first_message": GREETING,
        "system_prompt": "Be brief.",
        "stt_config": {"provider": SPEECH},
        "tts_config": {"provider": SPEECH},
        "llm_config": {
            "provider": "openai-compatible",
            "base_url": llm.base_url,
            "api_key": "sk-acme-opening-1111",
            "model": "acme-model",
        },
        "languages": [GERMAN],
    }


async def _call(app: SpokenCalls, assistant_id: str, destination: str) -> dict[str, Any]:
    call_id = await app.answered({"assistant_id": assistant_id, "destination": destination})
    await app.caller_says("Wann haben Sie geöffnet?")
    return await app.ended(call_id)


async def _saved(app: SpokenCalls, body: dict[str, Any]) -> str:
    status, saved = await app.send("POST", "/assistants", body)
    assert status == 201, saved
    assert saved["languages"] == [GERMAN]
    return str(saved["id"])


def greeted(call: dict[str, Any], voices: Voices, llm: LlmStandIn, german: bool) -> None:
    """What the caller heard first and what the model was first asked with: German (the
    language's first message, voice and line) or the assistant's own."""
    text, language, voice = (
        (GERMAN_GREETING, "de", "de-voice") if german else (GREETING, "en", "own")
    )
    greeting = call["messages"][0]
    assert (greeting["role"], greeting["content"]) == ("assistant", text), call
    assert greeting["language"] == language
    assert voices.said(voice)[:1] == [text]
    other_voice, other_text = ("own", GREETING) if german else ("de-voice", GERMAN_GREETING)
    assert other_text not in voices.said(other_voice)
    first = llm.requests[0].body["messages"]
    assert first[0]["role"] == "system"
    assert (GERMAN_LINE in first[0]["content"]) is german, first


@pytest.mark.parametrize(
    ("destination", "german"),
    [(GERMAN_NUMBER, True), (AUSTRIAN_NUMBER, True), (DESTINATION, False)],
    ids=["germany", "austria", "netherlands-not-listed"],
)
async def test_an_outbound_call_opens_in_the_language_of_its_destination(
    tmp_path: Path, llm: LlmStandIn, destination: str, german: bool
) -> None:
    voices = Voices()
    async with spoken_calls(settings_of(tmp_path)) as app:
        tts_registry.register(SPEECH, voices)
        assistant_id = await _saved(app, assistant(llm))
        call = await _call(app, assistant_id, destination)
    greeted(call, voices, llm, german)


@pytest.mark.parametrize(
    "codes",
    [["049"], ["4912"], ["+49"], [], ["1"] * 11, "49", [49]],
    ids=["leading-zero", "four-digits", "plus", "empty", "eleven", "not-a-list", "number"],
)
async def test_calling_codes_out_of_bounds_are_refused_naming_the_key(
    tmp_path: Path, codes: object
) -> None:
    async with spoken_calls(settings_of(tmp_path)) as app:
        body = {"name": "Desk", "languages": [{"language": "de", "calling_codes": codes}]}
        status, refused = await app.send("POST", "/assistants", body)
    assert status == 400, refused
    assert refused["message"].startswith("languages[0].calling_codes must be a list of 1-10"), (
        refused
    )


async def test_an_inbound_call_on_a_german_number_greets_in_german(
    tmp_path: Path, llm: LlmStandIn
) -> None:
    voices = Voices()
    async with spoken_calls(settings_of(tmp_path)) as app:
        tts_registry.register(SPEECH, voices)
        assistant_id = await _saved(app, assistant(llm))
        path = f"/phone-numbers/{number_id(ACME_NUMBERS[0])}"
        status, number = await app.send("PATCH", path, {"assistant_id": assistant_id})
        assert (status, number["language"]) == (200, None), number
        status, number = await app.send("PATCH", path, {"language": "de"})
        assert (status, number["language"]) == (200, "de"), number
        status, read = await app.send("GET", path)
        assert (status, read["language"], read["assistant_id"]) == (200, "de", assistant_id)
        # A Dutch caller (+31 is no language's calling code): the dialled number says German.
        inbound = InboundCall("chan-1", DESTINATION, ACME_NUMBERS[0])
        call_id = await app.service.engine.inbound.accept(inbound)
        assert call_id is not None
        app.pbx.live.add(call_id)  # the PBX's channel, as an originated one is
        await app.pbx.answer(call_id)
        async with asyncio.timeout(5):
            while not app.fake.channels:
                await asyncio.sleep(0.005)
        await app.caller_says("Wann haben Sie geöffnet?")
        call = await app.ended(call_id)
    greeted(call, voices, llm, german=True)


@pytest.mark.parametrize("language", ["German", "de-DE", "DE", "", 49])
async def test_a_numbers_language_out_of_bounds_is_refused_naming_it(
    tmp_path: Path, language: object
) -> None:
    async with spoken_calls(settings_of(tmp_path)) as app:
        path = f"/phone-numbers/{number_id(ACME_NUMBERS[0])}"
        status, refused = await app.send("PATCH", path, {"language": language})
        assert status == 400, refused
        assert "language" in refused["message"], refused
        status, read = await app.send("GET", path)
        assert read["language"] is None, read
