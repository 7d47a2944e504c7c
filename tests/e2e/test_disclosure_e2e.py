"""The AI disclosure heard first, on the lab Asterisk 22 through REST: the operator requires it
(``[ai_disclosure] required``) and the assistant's first message does not disclose the AI, so
voicedock says the operator's text (offline Piper) before it. The silent party's own recording
of what reached it, transcribed by offline Whisper, has the disclosure's words before the
greeting's; the call record says how it was given and its transcript holds both."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import (
    SILENT_PARTY,
    assert_heard,
    require_offline_speech,
    transcribe,
    wait_transcript,
    warm_offline_speech,
)
from fakes.llm_standin import LlmStandIn
from user_paths.backends import GREETING, asterisk_backend
from user_paths.scenarios import hang_up
from user_paths.test_field_pbx import assistant
from voicedock.config.disclosure import AiDisclosureSettings
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.timeout(90)]

DISCLOSURE = "This call is handled by an automated assistant."
DISCLOSURE_WORDS = {"handled", "automated", "assistant"}


def requires_disclosure(settings: Any) -> None:
    settings.ai_disclosure = AiDisclosureSettings(required=True, text=DISCLOSURE)


async def test_the_party_hears_the_disclosure_before_the_greeting(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    require_offline_speech()
    await warm_offline_speech()
    async with (
        LlmStandIn() as llm,
        asterisk_backend(lab, tmp_path, configure_more=requires_disclosure) as field,
    ):
        before = field.mark()
        resp = await field.client.post(
            "/calls/outbound",
            json={"destination": SILENT_PARTY, "assistant": assistant(llm)},
            headers=field.auth(),
        )
        assert resp.status == 200, await resp.text()
        call_id = str((await resp.json())["call_id"])
        await wait_transcript(field, call_id, lambda m: m["content"] == GREETING, 30)
        record = await hang_up(field, call_id)
        said = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        assert said[:2] == [DISCLOSURE, GREETING]
        assert record["ai_disclosure"]["method"] == "spoken"
        assert record["ai_disclosure"]["said"] is True
        pcm, rate = await field.heard(call_id, before)
    heard = await transcribe(pcm, rate)
    assert_heard(DISCLOSURE_WORDS | {"city", "library"}, heard)
    heard_words = re.findall(r"[a-z]+", heard.lower())
    disclosed = min(heard_words.index(w) for w in DISCLOSURE_WORDS if w in heard_words)
    greeted = min(heard_words.index(w) for w in ("city", "library") if w in heard_words)
    assert disclosed < greeted, heard  # the disclosure came first
