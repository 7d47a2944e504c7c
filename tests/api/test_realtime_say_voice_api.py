"""``POST /calls/outbound`` checks the voice a speech-to-speech assistant chose for what voicedock
says verbatim (``llm_config.say_voice``): an unknown TTS engine or voice is a 400
``Unresolvable configuration`` (a plain 400 for the session's own voice out of bounds) and
nothing is dialled; a known one is stored with the
call's resolved configuration."""

from __future__ import annotations

from typing import Any

import pytest

from api.conftest import Api
from fakes.world import DESTINATION

pytestmark = pytest.mark.unit


def realtime(llm_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "destination": DESTINATION,
        "assistant": {"provider": "xai_realtime", "llm_config": llm_config},
    }


# Resolved against the node's TTS engines (the operator's default when none is named): 400
# Unresolvable configuration (it was 422).
UNKNOWN_VOICES = [
    {"say_voice": {"provider": "nope"}},
    {"say_voice": {"provider": "openai", "voice": "nobody"}},
    {"say_voice": {"provider": "piper", "voice": "en-gb"}},
    {"say_voice": {"provider": "espeak-ng", "voice": "en gb; rm"}},
    {"say_voice": {"provider": "elevenlabs"}},
]
# The realtime session's own voice and the say voice's shape: refused by the request's types, 400.
BAD_VOICES = [
    {"voice": ""},
    {"voice": 5},
    {"say_voice": {"provider": "openai", "voice": 7}},
    {"say_voice": "nova"},
]


@pytest.mark.parametrize(
    ("llm_config", "title"),
    [
        *((v, "Unresolvable configuration") for v in UNKNOWN_VOICES),
        *((v, "Bad request") for v in BAD_VOICES),
    ],
)
async def test_unknown_say_voices_are_refused(
    api: Api, llm_config: dict[str, Any], title: str
) -> None:
    resp = await api.client.post("/calls/outbound", json=realtime(llm_config), headers=api.auth())
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == title
    assert "voice" in body["message"], body
    assert api.pbx.originated == []


async def test_chosen_say_voice_is_kept_with_the_call(api: Api) -> None:
    llm_config = {"voice": "Rex", "say_voice": {"provider": "openai", "voice": "nova"}}
    resp = await api.client.post("/calls/outbound", json=realtime(llm_config), headers=api.auth())
    assert resp.status == 200, await resp.text()
    call = await api.service.store.get_call(None, (await resp.json())["call_id"])
    assert call is not None
    assert call.assistant_config.llm_config["say_voice"] == {
        "provider": "openai",
        "voice": "nova",
    }
    assert call.assistant_config.llm_config["voice"] == "Rex"
