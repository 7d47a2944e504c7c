"""What the caller says while a consent window is open never reaches the model (through REST).

An assistant with an ``opt_out_keypad`` consent plan, stored through ``POST /assistants`` and
called through ``POST /calls/outbound`` on the FreeSWITCH fake (the real adapter, engine and
runner): the party talks over the disclosure and in the answer's window. None of it is a turn:
the model is asked nothing, the first message follows the window. The window's outcome is on
the call (``GET /calls/{id}``) while the call goes on, so a client that sees the call ended
reads it in the same reply. What the party says after the first message is a turn as usual,
and the model gets it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.world import DESTINATION
from pbx.freeswitch.live_service import TERMINAL, running_freeswitch_service
from pbx.freeswitch.live_service import until as eventually
from pipeline.synth import silence, voiced

pytestmark = pytest.mark.unit

DISCLOSURE = "This call is recorded and handled by an AI assistant. Press 9 to opt out."
FIRST = "Hello, this is the city library."


async def test_speech_in_the_consent_window_is_no_turn(tmp_path: Path) -> None:
    async with running_freeswitch_service(tmp_path) as live:
        speech = live.speech
        assert speech is not None
        speech.stt.texts = ["Hello? Who is this?", "I would like to renew a book."]
        status, body = await live.post(
            "/assistants",
            {
                "name": "Library",
                "first_message": FIRST,
                "consent_plan": {
                    "mode": "opt_out_keypad",
                    "message": DISCLOSURE,
                    "key": "9",
                    "timeout_seconds": 2,
                },
            },
        )
        assert status == 201, body
        status, body = await live.post(
            "/calls/outbound",
            {"destination": DESTINATION, "assistant_id": body["id"]},
        )
        assert status == 200, body
        call_id = body["call_id"]
        await live.wait_status(call_id, ("in-progress",))
        channel = live.far_end.channel_of(call_id)

        # the party talks over the disclosure, then again in the answer's window
        await live.far_end.speak(channel, voiced(700) + silence(700))
        await eventually(lambda: "Press 9 to opt out." in " ".join(speech.tts.texts))
        await live.far_end.speak(channel, voiced(700) + silence(700))
        await eventually(lambda: FIRST in " ".join(speech.tts.texts), 10.0)
        assert speech.llm.calls == [], "the model heard the consent window"
        assert speech.stt.calls == [], "the consent window was transcribed as a turn"

        # the outcome is on the call as soon as the window decided it, while the call goes on
        async def consent_shown() -> bool:
            status, body = await live.get(f"/calls/{call_id}")
            assert status == 200, body
            return body["status"] == "in-progress" and body["consent"] is not None

        await eventually(consent_shown)

        # after the first message the caller's words are a turn, and the model gets them
        await live.far_end.speak(channel, voiced(700) + silence(700))
        await eventually(lambda: len(speech.llm.calls) == 1)
        said = [m.content for m in speech.llm.calls[0] if m.role == "user"]
        assert said == ["Hello? Who is this?"], said
        status, body = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
        assert status == 200, body
        await live.wait_status(call_id, TERMINAL)
        status, body = await live.get(f"/calls/{call_id}")
        assert status == 200, body
        assert body["consent"]["outcome"] == "accepted", body
