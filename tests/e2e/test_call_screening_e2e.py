"""Calls answered by a phone's call-screening assistant, on the real lab Asterisk, through REST.

* The screened party (Google Call Screen's prompt, then, once it heard the caller's answer,
  the person: "Hello, who is this?"): the verdict is ``screening``; the party heard the
  default screening message (who calls, from the assistant's business name, and why, from the
  call's ``metadata.purpose``) and then the first message, in that order (its recording,
  transcribed); the screener's and the person's words never reached the dialogue.
* The declining screener (the iOS prompt, then "... not available. Please don't call this
  number again."): it heard the assistant's own ``screening_message``, never the first
  message, and the call ends ``screening-declined``.
"""

from __future__ import annotations

import pytest

from e2e.audio_helpers import (
    assert_heard,
    read_new_recording,
    require_offline_speech,
    transcribe,
    wait_spoken,
    warm_offline_speech,
)
from e2e.conftest import LiveService
from e2e.test_audio_e2e import SHORT_GREETING, control, wait_recorded
from fakes.world import SUPPORT_ID
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

SCREENED_PARTY = "+31612345698"
DECLINING_SCREENER = "+31612345699"
PURPOSE = "your parcel delivery"
SCREENING_MESSAGE = "Hi, this is the city library calling about an overdue book."


@pytest.fixture(autouse=True)
async def _offline_speech() -> None:
    require_offline_speech()
    await warm_offline_speech()


async def call(
    live: LiveService, destination: str, override: dict[str, str], **body: object
) -> str:
    request = {
        "destination": destination,
        "assistant_id": SUPPORT_ID,
        "assistant_override": {
            "first_message": SHORT_GREETING,
            "voicemail_detection": "detect",
            **override,
        },
        **body,
    }
    resp = await live.client.post("/calls/outbound", json=request, headers=live.auth())
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["call_id"])


async def test_a_screener_hears_who_calls_and_the_person_behind_it_the_greeting(
    live_ari: LiveService, lab: LabAsterisk
) -> None:
    live = live_ari
    before = set(lab.recordings_dir.glob("screened-*-rx.wav"))
    call_id = await call(live, SCREENED_PARTY, {}, metadata={"purpose": PURPOSE})
    await wait_spoken(live, call_id, SHORT_GREETING, 60)  # the party heard it to its end
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    verdict = ended["answering_machine"]
    assert verdict["result"] == "screening", verdict
    assert verdict["evidence"]["screening_outcome"] == "answered", verdict
    assert verdict["evidence"]["answered_at_ms"] > verdict["evidence"]["decided_at_ms"]
    events = [e["data"]["result"] for e in ended["events"] if e["type"] == "answering-machine"]
    assert events == ["screening"]
    spoken = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    default = f"Hi, this is the virtual assistant of Acme Corp, calling about {PURPOSE}."
    assert spoken[:2] == [f"{default} I will wait on the line for them.", SHORT_GREETING]
    said = [m["content"] for m in ended["messages"] if m["role"] == "user"]
    assert said == []  # neither the screener nor the person's "who is this?" was a turn

    pcm, rate = await read_new_recording(lab.recordings_dir, "screened-*-rx.wav", before)
    heard = (await transcribe(pcm, rate)).lower()
    # not the business's name: Whisper garbles brand names ("Acme Corp" → "acnecorp")
    assert_heard({"virtual", "assistant", "calling", "parcel", "delivery", "wait", "line"}, heard)
    assert_heard({"city", "library"}, heard)
    assert heard.index("delivery") < heard.index("library"), heard  # the greeting came after


async def test_a_screener_that_declines_ends_the_call_screening_declined(
    live_ari: LiveService, lab: LabAsterisk
) -> None:
    live = live_ari
    before = set(lab.recordings_dir.glob("declined-*-rx.wav"))
    call_id = await call(live, DECLINING_SCREENER, {"screening_message": SCREENING_MESSAGE})
    ended = await wait_recorded(live, call_id, within=60)
    assert ended["end_reason"] == "screening-declined"
    verdict = ended["answering_machine"]
    assert verdict["result"] == "screening", verdict
    assert verdict["evidence"]["screening_outcome"] == "declined", verdict
    spoken = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert spoken == [SCREENING_MESSAGE]  # the first message is for a person only

    pcm, rate = await read_new_recording(lab.recordings_dir, "declined-*-rx.wav", before)
    heard = await transcribe(pcm, rate)
    assert_heard({"city", "library", "overdue", "book"}, heard)
