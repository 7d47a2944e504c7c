"""Call audio on the real lab Asterisk: what the far party says reaches voicedock's pipeline
through the 8 kHz call path, and what voicedock says reaches the far party.

The lab's speaking parties (dialplan/lab/) play utterances synthesised at lab set-up and
record what they hear as ``<party>-<tag>-rx.wav``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import (
    SILENT_PARTY,
    TALK_OVER_PARTY,
    UTTERANCE_PARTY,
    assert_heard,
    read_new_recording,
    require_offline_speech,
    speak_ulaw,
    speech_seconds,
    transcribe,
    transcript,
    ulaw_to_pcm,
    wait_transcript,
    warm_offline_speech,
    words,
)
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_calls_e2e import TERMINAL, get_call, until, wait_status
from fakes.calls import call_finished
from fakes.world import SUPPORT_ID
from pbx.lab_calls import request, running_pbx
from voicedock.calls.commands import API_END_CALL
from voicedock.pbx.asterisk.media.session import MediaSession
from voicedock.pbx.base import PbxEventKind
from voicedock.pipeline.dialogue.turn_engine import ConversationConfig
from voicedock.pipeline.hearing.endpointing import SILENCE_TIMEOUT
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

GREETING = "Hello, this is the dental clinic. How can I help you?"
DEMO_PARTY = "+31612345676"  # listens to the greeting, then speaks (scripts/run.sh's call)
ECHO_PARTY = "+31612345677"  # records and echoes: talks over every assistant message


@pytest.fixture(autouse=True)
def _offline_speech() -> None:
    require_offline_speech()


async def test_media_session_hears_the_party_and_the_party_hears_us(lab: LabAsterisk) -> None:
    """No call runner: AsteriskPbx.open_media + MediaSession on an answered call."""
    before = set(lab.recordings_dir.glob("utterance-*-rx.wav"))
    greeting = await speak_ulaw(GREETING)
    heard = bytearray()
    async with running_pbx(lab) as (pbx, recorder):
        call = request(UTTERANCE_PARTY)
        await pbx.originate(call)
        await recorder.wait(call.call_id, PbxEventKind.ANSWERED)
        leg = await pbx.open_media(call.call_id)
        async with MediaSession.connect(leg.url) as media:
            frames = media.inbound_audio()
            # The first frame from the party means both legs are bridged: audio played before
            # that would never reach the party.
            heard += await asyncio.wait_for(anext(frames), 5)
            played = media.play(greeting, mark="greeting")
            # The party waits 3 s after answering, then speaks for about 2.3 s.
            listen_until = time.monotonic() + 6.5
            async with asyncio.timeout(15):
                async for frame in frames:
                    heard += frame
                    if time.monotonic() >= listen_until:
                        break
            result = await asyncio.wait_for(played.played(), 10)
            assert result.completed
        await pbx.hangup(call.call_id)
        await recorder.wait(call.call_id, PbxEventKind.HANGUP)

    caller_pcm = ulaw_to_pcm(bytes(heard))
    assert speech_seconds(caller_pcm) > 1.0
    said = words(await transcribe(caller_pcm))
    assert {"appointment", "monday"} <= said, said

    pcm, rate = await read_new_recording(lab.recordings_dir, "utterance-*-rx.wav", before)
    assert rate == 8000
    assert speech_seconds(pcm, rate) > 1.0
    text = await transcribe(pcm, rate)
    assert {"dental", "clinic"} <= words(text), text


# ---- through the whole service: REST → engine → runner → AsteriskPbx → lab ----------------

SHORT_GREETING = "Hello, city library."
LONG_GREETING = (
    "Hello and welcome to the city library. Our opening hours are from nine in the morning "
    "until six in the evening, from Monday to Saturday, and on Sunday we are closed. You can "
    "renew your books online, or ask one of our librarians at the front desk for help."
)


@pytest.fixture
async def warm_speech() -> None:
    await warm_offline_speech()


async def place_call(
    live: LiveService, destination: str, first_message: str, **override: object
) -> str:
    body = {
        "destination": destination,
        "assistant_id": SUPPORT_ID,
        "assistant_override": {"first_message": first_message, **override},
    }
    resp = await live.client.post("/calls/outbound", json=body, headers=live.auth())
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["call_id"])


async def control(live: LiveService, call_id: str, command: dict[str, Any]) -> None:
    resp = await live.client.post(f"/calls/{call_id}/control", json=command, headers=live.auth())
    assert resp.status == 200, await resp.text()


async def wait_recorded(live: LiveService, call_id: str, within: float) -> dict[str, Any]:
    """The ended call once the runner stored its record (messages come after the hang-up)."""
    await wait_status(live, call_id, TERMINAL, within=within)
    await asyncio.wait_for(call_finished(live.service.runner, call_id), 10)
    return await get_call(live, call_id)


def when(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def is_end(status: dict[str, Any]) -> bool:
    return status.get("to") == "ended"


def has_words(*wanted: str) -> Callable[[dict[str, Any]], bool]:
    return lambda message: set(wanted) <= words(message["content"])


async def test_caller_utterance_is_transcribed_and_the_caller_hears_the_first_message(
    live_ari: LiveService, lab: LabAsterisk, warm_speech: None
) -> None:
    live = live_ari
    before = set(lab.recordings_dir.glob("utterance-*-rx.wav"))
    call_id = await place_call(live, UTTERANCE_PARTY, SHORT_GREETING)
    await wait_transcript(live, call_id, has_words("appointment", "monday"), within=25)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    assert ended["status"] == "ended"
    user = [m["content"] for m in ended["messages"] if m["role"] == "user"]
    assert any({"appointment", "monday"} <= words(content) for content in user), user
    assistant = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert assistant[0] == SHORT_GREETING

    pcm, rate = await read_new_recording(lab.recordings_dir, "utterance-*-rx.wav", before)
    assert speech_seconds(pcm, rate) > 0.5
    heard = await transcribe(pcm, rate)
    assert {"city", "library"} <= words(heard), heard


async def test_say_inject_context_and_end_call_with_a_final_message(
    live_ari: LiveService, lab: LabAsterisk, warm_speech: None
) -> None:
    live = live_ari
    before = set(lab.recordings_dir.glob("silent-*-rx.wav"))
    call_id = await place_call(live, SILENT_PARTY, SHORT_GREETING)
    await wait_transcript(live, call_id, lambda m: m["content"] == SHORT_GREETING)

    said = "Your book has arrived at the front desk."
    await control(live, call_id, {"type": "say", "content": said})
    await wait_transcript(
        live, call_id, lambda m: m["role"] == "assistant" and m["content"] == said
    )

    update = "the reading room closes early today"
    command = {"type": "inject-context", "content": update, "trigger_response": True}
    await control(live, call_id, command)
    reply = await wait_transcript(live, call_id, has_words("reading", "room", "closes", "early"))
    assert reply["role"] == "assistant"

    final = "Goodbye from the city library."
    await control(live, call_id, {"type": "end-call", "message": final})
    ended = await wait_recorded(live, call_id, within=15)
    assert ended["status"] == "ended"
    assert ended["end_reason"] == API_END_CALL
    spoken = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert spoken[0] == SHORT_GREETING
    assert said in spoken
    assert spoken[-1] == final
    (hangup,) = [e for e in ended["events"] if e["type"] == "status" and is_end(e["data"])]
    last_words = transcript(ended)[-1]
    assert last_words["content"] == final
    assert when(hangup["created_at"]) >= when(last_words["ended_at"])

    # The final message was spoken to the end before the hang-up: the party heard all of it.
    pcm, rate = await read_new_recording(lab.recordings_dir, "silent-*-rx.wav", before)
    heard = await transcribe(pcm, rate)
    assert_heard({"book", "arrived", "front", "desk", "goodbye", "library"}, heard)


@pytest.mark.timeout(180)
async def test_caller_talking_over_the_first_message_interrupts_it(
    live_ari: LiveService, warm_speech: None
) -> None:
    live = live_ari
    call_id = await place_call(live, TALK_OVER_PARTY, LONG_GREETING)
    # The greeting is in the transcript once it is cut, or once said to its end (~14 s after
    # the answer): either comes well within 45 s, however loaded the machine.
    cut = await wait_transcript(live, call_id, lambda m: m["role"] == "assistant", within=45)
    # The party starts talking 1.5 s after it hears the greeting, well inside its ~14 s (on a
    # loaded machine the greeting may start later than 1.5 s after the answer).
    assert cut["interrupted"] is True, transcript(await get_call(live, call_id))
    assert 0 < len(cut["content"]) < len(LONG_GREETING)
    assert LONG_GREETING.startswith(cut["content"].rstrip(".…"))
    # What the party said over the greeting was heard (a pause may split it into turns).
    said = await wait_transcript(live, call_id, has_words("invoice"), within=45)
    assert said["role"] == "user"
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=30)
    stored = [m for m in ended["messages"] if m["role"] == "assistant"]
    assert stored[0]["content"] == cut["content"]


# ---- a say is never lost; messages during the call; the demo's greeting ----------

BOOK_ARRIVED = "Your book has arrived at the front desk."


@pytest.fixture
async def live_one_turn(lab: LabAsterisk, tmp_path: Path) -> AsyncIterator[LiveService]:
    """The service with a fixed 600 ms end of turn: the talk-over party's two sentences, 560 ms
    apart, are one turn (adaptive endpointing may end the turn after the first, and the second
    then barges in on whatever the assistant says next)."""
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.speech.endpointing.mode = "fixed"
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


async def test_say_during_a_greeting_the_party_talks_over_is_spoken_and_heard(
    live_one_turn: LiveService, lab: LabAsterisk, warm_speech: None
) -> None:
    """The party barges in on the greeting while a ``say`` waits behind it: the say is spoken
    after the party's turn (the party hears it), and GET shows the messages during the call."""
    live = live_one_turn
    before = set(lab.recordings_dir.glob("talkover-*-rx.wav"))
    call_id = await place_call(live, TALK_OVER_PARTY, LONG_GREETING)
    await wait_status(live, call_id, ("in-progress",))
    await asyncio.sleep(1.0)  # the greeting plays; the party talks 1.5 s after hearing it
    await control(live, call_id, {"type": "say", "content": BOOK_ARRIVED})
    said = await wait_transcript(
        live, call_id, lambda m: m["role"] == "assistant" and m["content"] == BOOK_ARRIVED, 40
    )
    assert said["interrupted"] is False

    during = await get_call(live, call_id)
    assert during["status"] == "in-progress"
    messages = during["messages"]
    assert messages[0]["role"] == "assistant"  # the greeting, cut: still in the transcript
    assert LONG_GREETING.startswith(messages[0]["content"].rstrip(".…"))
    assert any(m["role"] == "user" and "invoice" in words(m["content"]) for m in messages)
    assert {"role": "assistant", "content": BOOK_ARRIVED} in messages
    starts = [when(t["started_at"]) for t in transcript(during)]
    assert starts == sorted(starts)  # spoken order

    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    assert {"role": "assistant", "content": BOOK_ARRIVED} in ended["messages"]
    assert ended["messages"][: len(messages)] == messages  # stored once, not repeated

    pcm, rate = await read_new_recording(lab.recordings_dir, "talkover-*-rx.wav", before)
    heard = await transcribe(pcm, rate)
    assert_heard({"book", "arrived", "front", "desk"}, heard)


async def test_say_on_a_line_that_echoes_the_assistant_is_never_lost(
    live_ari: LiveService, warm_speech: None
) -> None:
    """The echo party returns the assistant's voice: every message is talked over. A say sent
    during the greeting is in the transcript, spoken or cut (never silently dropped)."""
    live = live_ari
    call_id = await place_call(live, ECHO_PARTY, LONG_GREETING)
    await wait_status(live, call_id, ("in-progress",))
    # At once: queued behind the greeting, before the echo barges in on it.
    await control(live, call_id, {"type": "say", "content": BOOK_ARRIVED})

    def is_the_say(message: dict[str, Any]) -> bool:
        content = str(message["content"]).rstrip(".…")
        cut = message["interrupted"] and BOOK_ARRIVED.startswith(content)
        return message["role"] == "assistant" and (message["content"] == BOOK_ARRIVED or cut)

    async def greeting_and_say() -> bool:
        said = [t for t in transcript(await get_call(live, call_id)) if t["role"] == "assistant"]
        return len(said) >= 2 and any(is_the_say(t) for t in said[1:])

    await until(greeting_and_say, within=40)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    assistant = [m for m in transcript(ended) if m["role"] == "assistant"]
    assert LONG_GREETING.startswith(assistant[0]["content"].rstrip(".…"))
    assert any(is_the_say(m) for m in assistant[1:]), assistant
    assert len([m for m in ended["messages"] if m["role"] == "assistant"]) == len(assistant)


async def test_the_demo_party_hears_the_whole_greeting_and_then_speaks(
    live_ari: LiveService, lab: LabAsterisk, warm_speech: None
) -> None:
    """The call scripts/run.sh prints: the greeting is heard whole, then the party speaks."""
    live = live_ari
    before = set(lab.recordings_dir.glob("demo-*-rx.wav"))
    call_id = await place_call(live, DEMO_PARTY, SHORT_GREETING)
    await wait_transcript(live, call_id, has_words("appointment", "monday"), within=30)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    first = transcript(ended)[0]
    assert (first["role"], first["content"], first["interrupted"]) == (
        "assistant",
        SHORT_GREETING,
        False,
    )
    pcm, rate = await read_new_recording(lab.recordings_dir, "demo-*-rx.wav", before)
    heard = await transcribe(pcm, rate)
    assert {"city", "library"} <= words(heard), heard


async def test_silent_callee_is_hung_up_after_the_silence_timeout(
    live_ari: LiveService, warm_speech: None
) -> None:
    live = live_ari
    call_id = await place_call(live, SILENT_PARTY, SHORT_GREETING, silence_timeout_seconds=6)
    ended = await wait_recorded(live, call_id, within=25)
    assert ended["status"] == "ended"
    assert ended["end_reason"] == SILENCE_TIMEOUT
    spoken = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert spoken == [SHORT_GREETING, ConversationConfig().silence_timeout_message]
    assert not [m for m in ended["messages"] if m["role"] == "user"]
