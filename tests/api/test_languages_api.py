"""An assistant's ``languages``: saved through REST as set, read back, and refused out of its
bounds with the key named (``languages[0].language must be ...``); a language its TTS cannot
speak (a voice the provider does not have; on Piper, any voice, and any language but its
voice's) refused naming ``languages[<i>].voice`` wherever a configuration is saved or placed:
POST and PATCH /assistants, an inline assistant on POST /calls/outbound, a squad's member."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from api.conftest import Api, serving
from api.spoken_calls import spoken_calls
from fakes.world import ACME, DESTINATION, make_settings, org_id
from voicedock.pipeline.providers.piper_tts import piper_available

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

GERMAN = {
    "language": "de",
    "voice": {"voice": "de"},
    "prompt": "Antworte auf Deutsch.",
    "first_message": "Guten Tag, wie kann ich helfen?",
}


async def test_languages_are_saved_read_and_cleared(tmp_path: Path) -> None:
    async with spoken_calls(make_settings(f"sqlite:///{tmp_path / 'langs.db'}")) as app:
        body = {"name": "Desk", "languages": [GERMAN, {"language": "fr"}]}
        status, saved = await app.send("POST", "/assistants", body)
        assert status == 201, saved
        assert saved["languages"] == [GERMAN, {"language": "fr"}]
        status, read = await app.send("GET", f"/assistants/{saved['id']}")
        assert (status, read["languages"]) == (200, [GERMAN, {"language": "fr"}]), read
        status, patched = await app.send("PATCH", f"/assistants/{saved['id']}", {"languages": None})
        assert status == 200, patched
        assert "languages" not in patched  # one language again: the assistant's own


@pytest.mark.parametrize(
    ("languages", "message"),
    [
        ([{"language": "German"}], "languages[0].language must be a BCP 47 primary language"),
        ([{"language": "de-DE"}], "languages[0].language must be a BCP 47 primary language"),
        ([{"language": "de", "voice": {"voice": "de; rm"}}], "languages[0].voice.voice must"),
        ([{"language": "de", "voice": {"model_path": "/x"}}], "languages[0].voice"),
        ([{"language": "de", "prompt": "x" * 501}], "languages[0].prompt must be a text"),
        ([{"language": "de", "speed": 2}], "languages[0]"),
        ([{"language": x} for x in ("de", "fr", "es", "it", "nl", "pl")], "languages must be"),
        ([], "languages must be a list of 1-5 languages"),
        ([{"language": "de"}, {"language": "de"}], "languages must list each language once"),
        ("de", "languages must be a list"),
    ],
)
async def test_languages_out_of_bounds_are_refused(
    tmp_path: Path, languages: object, message: str
) -> None:
    async with spoken_calls(make_settings(f"sqlite:///{tmp_path / 'langs.db'}")) as app:
        status, refused = await app.send(
            "POST", "/assistants", {"name": "Desk", "languages": languages}
        )
        assert status == 400, refused
        assert refused["message"].startswith(message), refused


async def test_a_language_listed_twice_is_refused_by_its_own_title(tmp_path: Path) -> None:
    """A rule the schema cannot state (each item's language once), so a title of its own."""
    async with spoken_calls(make_settings(f"sqlite:///{tmp_path / 'langs.db'}")) as app:
        twice = [{"language": "de"}, {"language": "de", "prompt": "Sprich Deutsch."}]
        status, refused = await app.send("POST", "/assistants", {"name": "D", "languages": twice})
    assert (status, refused["error"]) == (400, "Duplicate language"), refused


# A language's voice is the assistant's TTS speaking it (``calls/live/providers.py``): checked
# against the node's engines and voices as the call will build it, on every path that saves
# or places a configuration. The default ``[speech] tts`` is Piper with its packaged English
# voice, which speaks whatever voice is named.
needs_piper = pytest.mark.skipif(not piper_available(), reason="Piper voice not installed")
ESPEAK = {"provider": "espeak-ng", "voice": "en-us"}
PIPER_VOICE = "Piper speaks this node's one voice (en_US-joe-medium, en) whatever voice is named"
PIPER_ENGLISH = "this node's Piper voice (en_US-joe-medium) speaks en"


def _unresolvable(status: int, body: object, message: str) -> None:
    assert status == 400, body
    assert isinstance(body, dict)
    assert body["error"] == "Unresolvable configuration", body
    assert message in body["message"], body
    assert "e.g. espeak-ng" in body["message"] or "GET /voices" in body["message"], body


async def _send(api: Api, method: str, path: str, body: object) -> tuple[int, Any]:
    resp = await api.client.request(method, path, json=body, headers=api.auth())
    return resp.status, await resp.json()


@pytest.mark.parametrize(
    ("tts_config", "languages", "message"),
    [
        pytest.param(
            {"provider": "piper"},
            [{"language": "de", "voice": {"voice": "de"}}],
            f"languages[0].voice 'de' cannot be spoken with tts_config.provider 'piper': "
            f"{PIPER_VOICE}",
            marks=needs_piper,
        ),
        pytest.param(
            {"provider": "piper"},
            [{"language": "en"}, {"language": "de", "prompt": "Antworte auf Deutsch."}],
            f"languages[1].voice: 'de' has no voice with tts_config.provider 'piper': "
            f"{PIPER_ENGLISH} and would read the de replies; use a TTS provider with a de voice",
            marks=needs_piper,
        ),
        pytest.param(
            {"provider": "offline"},
            [{"language": "en", "voice": {"voice": "en_US-joe-medium"}}],
            "languages[0].voice 'en_US-joe-medium' cannot be spoken with tts_config.provider "
            f"'offline' (Piper on this node): {PIPER_VOICE}; leave the voice out for en",
            marks=needs_piper,
        ),
        pytest.param(
            None,  # the operator's engine: Piper
            [{"language": "fr"}],
            f"languages[0].voice: 'fr' has no voice with tts_config.provider 'piper': "
            f"{PIPER_ENGLISH}",
            marks=needs_piper,
        ),
        (
            ESPEAK,
            [
                {"language": "de", "voice": {"voice": "de"}},
                {"language": "fr", "voice": {"voice": "xx-nowhere"}},
            ],
            "languages[1].voice.voice 'xx-nowhere' is not one of this node's espeak-ng voices",
        ),
        (
            {"provider": "openai", "api_key": "sk-own"},
            [{"language": "de", "voice": {"voice": "robot"}}],
            "languages[0].voice.voice 'robot' is not one of this node's openai voices",
        ),
    ],
    ids=["piper-voice", "piper-de", "offline-voice", "operator-piper-fr", "espeak-no", "openai-no"],
)
async def test_a_language_its_tts_cannot_speak_is_refused_naming_it(
    tmp_path: Path, tts_config: dict[str, str] | None, languages: list[object], message: str
) -> None:
    body: dict[str, object] = {"name": "Desk", "languages": languages}
    if tts_config is not None:
        body["tts_config"] = tts_config
    async with serving(make_settings(f"sqlite:///{tmp_path / 'langs.db'}")) as api:
        _unresolvable(*await _send(api, "POST", "/assistants", body), message)
        outbound = {"destination": DESTINATION, "assistant": body}
        _unresolvable(*await _send(api, "POST", "/calls/outbound", outbound), message)
        assert api.pbx.originated == []  # nothing dialled
        saved = await api.service.store.list_assistants(org_id(ACME))
        assert "Desk" not in [a.name for a in saved]


@needs_piper
async def test_a_patch_keeps_each_language_spoken_by_the_voice_it_names(tmp_path: Path) -> None:
    german = {"language": "de", "voice": {"voice": "de"}}
    async with serving(make_settings(f"sqlite:///{tmp_path / 'langs.db'}")) as api:
        status, saved = await _send(
            api,
            "POST",
            "/assistants",
            {"name": "Desk", "tts_config": ESPEAK, "languages": [german]},
        )
        assert status == 201, saved
        path = f"/assistants/{saved['id']}"
        status, body = await _send(api, "PATCH", path, {"tts_config": {"provider": "piper"}})
        _unresolvable(
            status,
            body,
            "languages[0].voice 'de' cannot be spoken with tts_config.provider 'piper'",
        )
        status, english = await _send(
            api, "POST", "/assistants", {"name": "Reception", "languages": [{"language": "en"}]}
        )
        assert status == 201, english  # Piper with English alone: its own voice speaks it
        status, body = await _send(
            api, "PATCH", f"/assistants/{english['id']}", {"languages": [{"language": "de"}]}
        )
        _unresolvable(
            status, body, "languages[0].voice: 'de' has no voice with tts_config.provider 'piper'"
        )
        status, read = await _send(api, "GET", path, None)
        assert (status, read["tts_config"], read["languages"]) == (200, ESPEAK, [german])


@needs_piper
async def test_a_squad_member_speaks_its_languages_with_its_own_tts(tmp_path: Path) -> None:
    german = [{"language": "de", "voice": {"voice": "de"}}]

    def squad(assistant: dict[str, object]) -> dict[str, object]:
        member = {"name": "desk", "assistant": {"system_prompt": "Be brief.", **assistant}}
        return {"name": "Desk", "members": [member]}

    async with serving(make_settings(f"sqlite:///{tmp_path / 'langs.db'}")) as api:
        status, body = await _send(api, "POST", "/squads", squad({"languages": german}))
        _unresolvable(status, body, "members[0].assistant.languages[0].voice 'de' cannot be spoken")
        espeak = squad({"languages": german, "tts_config": ESPEAK})
        status, body = await _send(api, "POST", "/squads", espeak)
        assert status == 201, body


@needs_piper
async def test_each_language_is_placed_with_the_voice_that_speaks_it(tmp_path: Path) -> None:
    """espeak-ng with its ``de`` and ``fr-fr`` voices and Piper with English alone are placed,
    the languages kept with the call's configuration; the same languages on Piper are not."""
    languages = [
        {"language": "de", "voice": {"voice": "de"}},
        {"language": "fr", "voice": {"voice": "fr-fr"}},
    ]
    async with serving(make_settings(f"sqlite:///{tmp_path / 'langs.db'}")) as api:
        for provider, assistant in (
            ("espeak-ng", {"tts_config": ESPEAK, "languages": languages}),
            ("piper", {"tts_config": {"provider": "piper"}, "languages": [{"language": "en"}]}),
        ):
            status, saved = await _send(api, "POST", "/assistants", {"name": "Desk", **assistant})
            assert (status, saved.get("languages")) == (201, assistant["languages"]), saved
            outbound = {"destination": DESTINATION, "assistant": assistant}
            status, placed = await _send(api, "POST", "/calls/outbound", outbound)
            assert status == 200, placed
            call = await api.service.store.get_call(None, placed["call_id"])
            assert call is not None
            config = call.assistant_config
            assert config.tts_config["provider"] == provider
            assert msgspec.to_builtins(config.languages) == assistant["languages"]
        piper = {"tts_config": {"provider": "piper"}, "languages": languages}
        status, body = await _send(
            api, "POST", "/calls/outbound", {"destination": DESTINATION, "assistant": piper}
        )
        _unresolvable(status, body, "languages[0].voice 'de' cannot be spoken")
        assert len(api.pbx.originated) == 2
