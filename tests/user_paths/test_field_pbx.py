"""The PBXs companies run, through REST: the same calls on Debian bullseye's Asterisk 16.28 (no
chan_websocket: its audio over RTP, which it offers), on Asterisk 22 over chan_websocket, over
RTP and over AudioSocket (``[pbx.asterisk] media_transport`` forced). As a user would check at
the far end (where each runs: ``every_pbx`` and ``every_version`` below):

* on all four, an outbound call talks: the utterance party hears the greeting (its own
  recording), its sentence reaches the LLM stand-in, and it hears the model's reply; the
  call's recording holds each side on its own channel;
* on all four, a party who talks over the greeting cuts it within 300 ms
  of having said enough to barge in (``barge_in_speech_ms`` of speech, found by voicedock's
  own VAD and endpointer in the call's recording, whose two channels share voicedock's clock:
  the caller as it arrived, the assistant as it was played);
* on all four, a blind transfer hands the caller to the internal target ``sales``; a warm one
  briefs the agent over a leg of the same transport, and the agent takes the caller;
* on Asterisk 16.28 and on 22 over chan_websocket and over RTP, an inbound call to a DID is
  answered by its assistant, whose greeting the caller hears;
* on all four, a keypad entry (the keypad party's 1234#) reaches the model as one user turn.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
import soundfile

from e2e.audio_helpers import (
    TALK_OVER_PARTY,
    UTTERANCE_PARTY,
    assert_heard,
    read_finished_recording,
    require_offline_speech,
    transcribe,
    wait_transcript,
    warm_offline_speech,
    words,
)
from fakes.llm_standin import LlmStandIn
from user_paths.backends import GREETING, GREETING_WORDS, AsteriskBackend, asterisk_backend
from user_paths.fixtures import BACKEND_MARKS
from user_paths.scenarios import get_call, hang_up, wait_status
from voicedock.pipeline.frames import Interruption
from voicedock.pipeline.hearing.endpointing import Endpointer, EndpointingConfig
from voicedock.pipeline.hearing.vad import VadConfig, VoiceActivityDetector
from voicedock_lab.heard import listen

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]

KEYPAD_PARTY = "+31612345695"  # answers, waits 3 s, presses 1234# (250 ms a key)
REPLY = "We are open on Monday morning."
BARGE_IN_S = 0.300
LONG_GREETING = (
    "Hello and welcome to the city library. Our opening hours are from nine in the morning "
    "until six in the evening, from Monday to Saturday, and on Sunday we are closed."
)
# name -> (the lab fixture, media_transport)
FIELD = {
    "asterisk": ("lab", "auto"),  # Asterisk 22: chan_websocket
    "asterisk-rtp": ("lab", "rtp"),
    "asterisk-audiosocket": ("lab", "audiosocket"),
    "asterisk16": ("lab16", "auto"),  # Asterisk 16.28: RTP, the only way it has
}
MARKS = {**BACKEND_MARKS, "asterisk-audiosocket": BACKEND_MARKS["asterisk"]}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def field(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsteriskBackend]:
    """The service on a lab Asterisk, its calls' audio as ``FIELD`` says, recording calls."""
    require_offline_speech()
    await warm_offline_speech()
    fixture, transport = FIELD[request.param]
    lab: Any = request.getfixturevalue(fixture)
    directory = tmp_path_factory.mktemp(f"field-{request.param}")

    def recording(settings: Any) -> None:
        settings.recordings.directory = str(directory / "recordings")
        settings.policy.internal_targets = ["sales", "warmaccept"]

    async with asterisk_backend(
        lab, directory, name=request.param, media_transport=transport, configure_more=recording
    ) as running:
        yield running


def on(*names: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        "field", [pytest.param(name, marks=MARKS[name], id=name) for name in names], indirect=True
    )


# Where each path runs. Every path on all four: a call that talks (and its recording), the
# transfers (the agent's leg travels as the call's audio does), what a transport and a version
# do on their own (cutting the greeting, the keys they carry). An inbound channel entering the
# application, which each version does its own way, on 16 and on 22 over chan_websocket and
# RTP; once answered, its audio travels as an outbound call's, which talks on AudioSocket too.
every_pbx = on(*FIELD)
every_version = on("asterisk", "asterisk-rtp", "asterisk16")


def assistant(llm: LlmStandIn, first_message: str = GREETING, **extra: Any) -> dict[str, Any]:
    """A transient assistant whose model is the stand-in; offline speech."""
    return {
        "first_message": first_message,
        "llm_config": {
            "provider": "openai-compatible",
            "base_url": llm.base_url,
            "api_key": "sk-lab",
            "model": "lab-model",
        },
        "stt_config": {"provider": "offline"},
        "tts_config": {"provider": "offline"},
        **extra,
    }


async def call(field: AsteriskBackend, destination: str, **body: Any) -> str:
    resp = await field.client.post(
        "/calls/outbound", json={"destination": destination, **body}, headers=field.auth()
    )
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["call_id"])


def recordings_of(field: AsteriskBackend, party: str) -> set[Path]:
    return set(Path(field.lab.recordings_dir).glob(f"{party}-*-rx.wav"))


async def new_recording(field: AsteriskBackend, party: str, before: set[Path]) -> Path:
    async with asyncio.timeout(10):
        while not (fresh := recordings_of(field, party) - before):
            await asyncio.sleep(0.05)
    return fresh.pop()


@every_pbx
async def test_an_outbound_call_talks_and_its_recording_holds_both_sides(
    field: AsteriskBackend,
) -> None:
    before = recordings_of(field, "utterance")
    async with LlmStandIn(reply=REPLY) as llm:
        call_id = await call(field, UTTERANCE_PARTY, assistant=assistant(llm), record=True)
        request = await llm.wait_request(timeout=30)
        assert {"appointment", "monday"} <= words(request.last_user_text), request.messages
        await wait_transcript(field, call_id, lambda m: m["content"] == REPLY, 20)
        await asyncio.sleep(2.5)  # the reply is heard to its end
        ended = await hang_up(field, call_id)
    heard = await new_recording(field, "utterance", before)
    pcm, rate = await read_finished_recording(heard)
    text = await transcribe(pcm, rate)
    assert_heard(GREETING_WORDS, text)  # the greeting ...
    assert_heard({"open", "monday", "morning"}, text)  # ... and the model's reply
    # The call's recording: the caller on its own channel, the assistant on the other.
    resp = await field.client.get(ended["recording_url"], headers=field.auth())
    assert resp.status == 200
    data, rate = soundfile.read(io.BytesIO(await resp.read()), dtype="int16")
    assert data.shape[1] == 2
    caller, assistant_side = (
        np.ascontiguousarray(data[:, channel]).astype("<i2").tobytes() for channel in (0, 1)
    )
    assert {"appointment", "monday"} <= words(await transcribe(caller, rate))
    assert_heard(GREETING_WORDS, await transcribe(assistant_side, rate))
    assert (await get_call(field, call_id))["status"] == "ended"


@every_pbx
async def test_a_party_who_talks_over_the_greeting_cuts_it_within_300_ms(
    field: AsteriskBackend,
) -> None:
    before = recordings_of(field, "talkover")
    async with LlmStandIn(reply=REPLY) as llm:
        body = {"assistant": assistant(llm, LONG_GREETING), "record": True}
        call_id = await call(field, TALK_OVER_PARTY, **body)
        cut = await wait_transcript(field, call_id, lambda m: m["role"] == "assistant", 20)
        assert cut["interrupted"] is True, cut
        await asyncio.sleep(2.0)  # the recording holds the party's speech past the cut
        ended = await hang_up(field, call_id)
    # The party heard the greeting stop: a few words of it, never the whole.
    heard, rate = await read_finished_recording(await new_recording(field, "talkover", before))
    greeting = listen(np.frombuffer(heard, dtype="<i2"), rate)
    assert greeting.onset_s is not None
    # The call's recording, on voicedock's clock: the caller as voicedock got it (left), the
    # assistant as it was played to the caller (right).
    resp = await field.client.get(ended["recording_url"], headers=field.auth())
    assert resp.status == 200
    data, rate = soundfile.read(io.BytesIO(await resp.read()), dtype="int16")
    caller = np.ascontiguousarray(data[:, 0]).astype("<i2")
    played = np.ascontiguousarray(data[:, 1]).astype("<i2")
    spoke = listen(caller, rate).onset_s
    assert spoke is not None
    due = spoke + _barge_in_due(caller[int(spoke * rate) :].tobytes(), rate)
    assert listen(played[: int(due * rate)], rate).onset_s is not None  # the greeting began
    stopped = _first_silence(played[int(due * rate) :], rate)
    assert stopped <= BARGE_IN_S, (
        f"the greeting went on {stopped:.3f} s after the caller's speech could barge in "
        f"({due - spoke:.3f} s after its first syllable)"
    )
    # ... and it did not come back (a pause between its sentences is no cut): silence while
    # the party goes on talking (its sentence lasts about 8 s).
    later = played[int((due + BARGE_IN_S) * rate) : int((due + 2.0) * rate)]
    assert listen(later, rate).onset_s is None, "the greeting went on after the barge-in"


def _barge_in_due(said: bytes, rate: int) -> float:
    """When what the party said first qualifies as a barge-in, by voicedock's own rules:
    its VAD on each 20 ms frame, its endpointer with the assistant audible."""
    vad = VoiceActivityDetector(VadConfig(sample_rate=rate, frame_ms=20))
    endpointer = Endpointer(EndpointingConfig())
    for index, speech in enumerate(vad.process(said)):
        if any(isinstance(f, Interruption) for f in endpointer.process(speech, True)):
            return (index + 1) * 0.020
    raise AssertionError("the party never said enough to barge in")


def _first_silence(samples: np.ndarray[Any, Any], rate: int, quiet_s: float = 0.4) -> float:
    """When the first run of ``quiet_s`` of silence starts (the greeting stopped)."""
    size = rate // 50
    frames = samples[: len(samples) // size * size].astype(np.float64).reshape(-1, size)
    loud = np.sqrt((frames**2).mean(axis=1)) > 300.0
    needed = int(quiet_s * 50)
    run = 0
    for index, is_loud in enumerate(loud):
        run = 0 if is_loud else run + 1
        if run == needed:
            return (index + 1 - needed) / 50
    return len(loud) / 50


@every_pbx
async def test_a_blind_transfer_hands_the_caller_to_sales(field: AsteriskBackend) -> None:
    before = set(Path(field.lab.recordings_dir).glob("sales-*-rx.wav"))
    call_id = await call(field, field.silent, assistant_id=field.assistant_id)
    await wait_status(field, call_id, ("in-progress",))
    resp = await field.client.post(
        f"/calls/{call_id}/control",
        json={"type": "transfer", "destination": "sales"},
        headers=field.auth(),
    )
    assert resp.status == 200, await resp.text()
    ended = await wait_status(field, call_id, ("ended", "failed"), within=20)
    assert (ended["status"], ended["end_reason"], ended["transferred_to"]) == (
        "ended",
        "transferred",
        "sales",
    )
    async with asyncio.timeout(10):  # sales answered the caller and records it
        while not set(Path(field.lab.recordings_dir).glob("sales-*-rx.wav")) - before:
            await asyncio.sleep(0.05)
    await field.release_transferred(call_id)


@every_pbx
async def test_a_warm_transfer_briefs_the_agent_who_accepts(field: AsteriskBackend) -> None:
    """The agent's leg travels as the call's do: the agent (warmaccept: answers, presses 1
    after 2 s) is briefed on it, and takes the caller."""
    before = set(Path(field.lab.recordings_dir).glob("warmaccept-*-rx.wav"))
    call_id = await call(field, field.silent, assistant_id=field.assistant_id)
    await wait_status(field, call_id, ("in-progress",))
    body = {
        "type": "transfer",
        "destination": "warmaccept",
        "mode": "warm",
        "summary": "The caller has a question about an invoice.",
    }
    resp = await field.client.post(f"/calls/{call_id}/control", json=body, headers=field.auth())
    assert resp.status == 200, await resp.text()
    ended = await wait_status(field, call_id, ("ended", "failed"), within=30)
    assert (ended["status"], ended["end_reason"], ended["transferred_to"]) == (
        "ended",
        "transferred",
        "warmaccept",
    )
    await field.release_transferred(call_id)
    # The agent answered and took the caller (recorded by the lab); the briefing went over the
    # agent's media leg, which the attempt opens before it listens for the agent's key (a leg
    # that failed would fail the transfer). How much of the briefing the agent heard depends
    # on how fast it was synthesized: the agent presses 1 two seconds after answering.
    await new_recording_like(field, "warmaccept-*-rx.wav", before)


async def new_recording_like(field: AsteriskBackend, pattern: str, before: set[Path]) -> Path:
    async with asyncio.timeout(10):
        while not (fresh := set(Path(field.lab.recordings_dir).glob(pattern)) - before):
            await asyncio.sleep(0.05)
    return fresh.pop()


@every_version
async def test_an_inbound_call_is_answered_by_its_assistant(field: AsteriskBackend) -> None:
    ref = await field.call_in()
    async with asyncio.timeout(15):
        while not (inbound := await _inbound_calls(field)):
            await asyncio.sleep(0.1)
    call_id = inbound[0]
    # The lab's caller says "hello world" as soon as it is answered: it may cut the greeting.
    started = await wait_transcript(field, call_id, lambda m: m["role"] == "assistant", 20)
    assert GREETING.startswith(started["content"].rstrip(".…")), started
    whole = await wait_transcript(
        field, call_id, lambda m: m["role"] == "assistant" and not m["interrupted"], 30
    )
    await asyncio.sleep(1.0)
    record = await hang_up(field, call_id)
    assert (record["direction"], record["assistant_phone"]) == ("inbound", field.did)
    pcm, rate = await field.caller_heard(ref)
    assert_heard(words(whole["content"]), await transcribe(pcm, rate))  # the caller heard it


async def _inbound_calls(field: AsteriskBackend) -> list[str]:
    """The ids of the calls in progress that came in (outbound ids have their own prefix)."""
    resp = await field.client.get("/calls?status=in-progress", headers=field.auth())
    assert resp.status == 200
    calls = (await resp.json())["calls"]
    return [c["id"] for c in calls if not c["id"].startswith("call-outbound-")]


@every_pbx
async def test_a_keypad_entry_reaches_the_model(field: AsteriskBackend) -> None:
    async with LlmStandIn(reply="Thank you, I have your code.") as llm:
        keypad = {"timeout_seconds": 10, "terminator": "#", "max_digits": 8}
        call_id = await call(field, KEYPAD_PARTY, assistant=assistant(llm, "Hello.", keypad=keypad))
        request = await llm.wait_request(timeout=30)
        assert request.texts("user") == ["Keypad: 1234#"]
        await hang_up(field, call_id)
