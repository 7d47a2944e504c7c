"""Semantic end of turn on a real call: REST → engine → lab Asterisk → a speaking party →
Whisper and the turn model → the OpenAI-compatible LLM stand-in.

The pausing party says "I would like to book an appointment, um," then, after 800 ms of
silence, "for Tuesday.": with ``turn_detection`` "model" it is not answered until it has
finished (the LLM receives the whole sentence as ONE user turn). The utterance party says a
finished sentence; it is answered sooner with "model" than with "silence": the calls are made
in the same run, and the order is asserted, not a time: the silence the engine waited before
the reply (the record's ``latency``), and the gap the party heard between the end of its words
and the reply's first sound (its recordings). The gap is compared with the turn transcribed
once it ended (``streaming: false``, as with a cloud STT): transcribed while spoken, the
speculative final of the pause is what both settings wait for on a loaded machine (Whisper
takes longer than either silence), and the gap the party hears differs by a few frames only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from e2e.audio_helpers import (
    RATE,
    UTTERANCE_PARTY,
    read_new_recording,
    require_offline_speech,
    wait_transcript,
    words,
)
from e2e.conftest import LiveService
from e2e.test_audio_e2e import control, place_call, wait_recorded
from e2e.test_echo_e2e import LOUD, frame_levels
from e2e.test_llm_e2e import REPLY, live, llm  # noqa: F401 (the fixtures)
from fakes.llm_standin import ChatRequest, LlmStandIn
from voicedock.pipeline.hearing import turn_model
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

PAUSING_PARTY = "+31612345662"  # "…an appointment, um," 800 ms "for Tuesday."
GREETING = "Hello, city library."
SPEAKS_AT_S = 3.0  # the parties start speaking 3 s after answering


@pytest.fixture(autouse=True)
def _turn_model() -> None:
    require_offline_speech()
    if not turn_model.installed():
        pytest.fail("the turn model (pipecat-ai) is not installed", pytrace=False)


async def converse(
    live: LiveService,  # noqa: F811
    llm: LlmStandIn,  # noqa: F811
    party: str,
    turn_detection: str,
    **override: object,
) -> tuple[ChatRequest, dict[str, Any]]:
    """Call ``party``; the LLM request that answered its words, and the ended call."""
    asked = len(llm.requests)
    call_id = await place_call(live, party, GREETING, turn_detection=turn_detection, **override)
    request = await llm.wait_request(asked + 1, timeout=40)
    await wait_transcript(live, call_id, lambda m: m["content"] == REPLY, within=30)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    assert ended["status"] == "ended"
    return request, ended


def user_turns(call: dict[str, Any]) -> list[str]:
    return [m["content"] for m in call["messages"] if m["role"] == "user"]


def answer_gap_s(heard: bytes, said: bytes) -> float:
    """From the end of the party's words (what it sent) to the first sound of the reply
    (what it heard after them)."""
    sent = frame_levels(np.frombuffer(said, dtype="<i2").astype(np.float64), RATE)
    got = frame_levels(np.frombuffer(heard, dtype="<i2").astype(np.float64), RATE)
    loud_sent = [i for i, level in enumerate(sent) if level > LOUD and i >= SPEAKS_AT_S * 50]
    assert loud_sent, "the party never spoke"
    ended = loud_sent[-1]
    reply = next((i for i in range(ended + 1, len(got)) if got[i] > LOUD), None)
    assert reply is not None, "the party never heard a reply"
    return (reply - ended) * 0.02


async def test_a_caller_pausing_mid_sentence_is_answered_once_finished(
    live: LiveService,  # noqa: F811
    llm: LlmStandIn,  # noqa: F811
) -> None:
    request, ended = await converse(live, llm, PAUSING_PARTY, "model")
    # The whole sentence, as one user turn: the 800 ms pause did not end it.
    said = request.texts("user")
    assert len(said) == 1, said
    assert {"appointment", "tuesday"} <= words(said[0]), said
    assert len(user_turns(ended)) == 1, user_turns(ended)


async def test_a_finished_sentence_is_answered_sooner_with_the_model_than_with_silence(
    live: LiveService,  # noqa: F811
    llm: LlmStandIn,  # noqa: F811
    lab: LabAsterisk,
) -> None:
    waited: dict[tuple[str, bool], float] = {}
    gaps: dict[tuple[str, bool], float] = {}
    for streaming in (True, False):
        stt = {"provider": "offline", "streaming": streaming}
        for mode in ("silence", "model"):
            before = set(lab.recordings_dir.glob("utterance-*x.wav"))
            request, ended = await converse(live, llm, UTTERANCE_PARTY, mode, stt_config=stt)
            assert {"appointment", "monday"} <= words(request.last_user_text)
            (latency, *_) = ended["latency"]
            waited[mode, streaming] = latency["endpointing_ms"]
            heard, _ = await read_new_recording(lab.recordings_dir, "utterance-*-rx.wav", before)
            said, _ = await read_new_recording(lab.recordings_dir, "utterance-*-tx.wav", before)
            gaps[mode, streaming] = answer_gap_s(heard, said)
    print(f"silence waited before the reply: {waited}; gap the party heard (s): {gaps}")
    for streaming in (True, False):
        assert waited["model", streaming] < waited["silence", streaming]
    assert gaps["model", False] < gaps["silence", False]
