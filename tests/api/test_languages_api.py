"""An assistant's ``languages``: saved through REST as set, read back, and refused out of its
bounds with the key named (``languages[0].language must be ...``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.spoken_calls import spoken_calls
from fakes.world import make_settings

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
