"""A call-screening assistant on a live outbound call (``calls/live/screening.py`` and
``call_screening.py``): told from a machine by its words, it hears the screening message and
the person behind it the first message; a decline or nobody picking up ends the call with its
own reason; a voicemail greeting that ends in silence stays a machine. The callee's audio is
espeak-ng's, the STT a script."""

from __future__ import annotations

import logging
import shutil
from typing import cast

import pytest

from pipeline.fakes import FakeStt
from voicedock.aio import Supervisor
from voicedock.calls.assistants.placeholders import fill_config
from voicedock.calls.live.screening import SCREENING, VoicemailScreening
from voicedock.calls.voicemail import (
    DETECT,
    LEAVE_MESSAGE,
    SCREENING_DECLINED,
    SCREENING_TIMEOUT,
    VOICEMAIL,
    VoicemailSettings,
    default_screening_message,
    voicemail_settings,
)
from voicedock.domain.assistant_config import config_of
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.events import AnsweringMachineHeard, CallEvents
from voicedock.pipeline.providers.base import ProviderServerError
from voicedock_lab.greetings import Voice, machine_greeting, person_hello
from voicedock_lab.utterances import SCREENING_DECLINE, SCREENING_GOOGLE

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]

RATE = 8000
FIRST = "Hello, city library."
SCREENING_MESSAGE = "Hi, this is the city library about your reserved book."
VOICE = Voice("en-us", 165)


class Line:
    """The dialogue as the screening uses it: what was said, and the call's end."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.final: list[str | None] = []

    async def say(self, text: str) -> None:
        self.said.append(text)

    async def end_call(self, final_message: str | None = None) -> None:
        self.final.append(final_message)


class Call:
    def __init__(self, stt: FakeStt | None, *, mode: str = DETECT, wait_s: float = 45.0) -> None:
        self.line = Line()
        self.ended: list[str] = []
        self.verdicts: list[dict[str, object]] = []
        self.tasks = Supervisor("test call", logging.getLogger("test"))
        message = "Please call us back." if mode == LEAVE_MESSAGE else None
        settings = VoicemailSettings(mode, message, SCREENING_MESSAGE, wait_s)

        events = CallEvents()
        events.subscribe(AnsweringMachineHeard, lambda heard: self.verdicts.append(heard.verdict))
        self.screening = VoicemailScreening(
            settings, RATE, FIRST, events=events, tasks=self.tasks, end=self.ended.append
        )
        self.screening.transcribe_with(stt)

    async def hear(self, audio: bytes, chunk: int = 320) -> None:
        """``audio`` as the call's media delivers it, while the screening listens; then
        whatever it started in the background runs to its end."""
        dialogue = cast(Dialogue, self.line)
        for start in range(0, len(audio), chunk):
            if self.screening.listening:
                await self.screening.hear(audio[start : start + chunk], dialogue)
            await self.tasks.drain()


def screener_prompt() -> bytes:
    audio, _ = machine_greeting(SCREENING_GOOGLE.text, VOICE, RATE, beep_hz=None)
    return audio


async def test_the_screener_hears_the_screening_message_and_the_person_the_greeting() -> None:
    stt = FakeStt([SCREENING_GOOGLE.text, "Hello, who is this?"])
    call = Call(stt)
    prompt = screener_prompt()
    async with call.tasks:
        await call.hear(prompt)
        assert call.line.said == [SCREENING_MESSAGE]
        assert call.screening.listening  # the screener's line is not the dialogue's
        await call.hear(person_hello("Hello, who is this?", VOICE, RATE))
    assert call.line.said == [SCREENING_MESSAGE, FIRST]
    assert not call.screening.listening  # the person is the dialogue's now
    assert call.ended == []
    assert [v["result"] for v in call.verdicts] == [SCREENING]
    verdict = call.screening.verdict
    assert verdict is not None
    evidence = cast(dict[str, object], verdict["evidence"])
    assert verdict["result"] == SCREENING
    assert evidence["screening_outcome"] == "answered"
    # On the callee's clock: after the prompt and its silence, once "who is this?" was said.
    assert cast(int, evidence["answered_at_ms"]) > len(prompt) * 1000 // (2 * RATE) + 1000
    assert len(stt.calls) == 2  # the prompt, then the person: nothing else was read


async def test_a_screener_that_declines_ends_the_call() -> None:
    call = Call(FakeStt([SCREENING_GOOGLE.text, SCREENING_DECLINE.text]))
    async with call.tasks:
        await call.hear(screener_prompt())
        await call.hear(person_hello(SCREENING_DECLINE.text, VOICE, RATE))
    assert call.ended == [SCREENING_DECLINED]
    assert call.line.said == [SCREENING_MESSAGE]  # never the first message
    assert call.screening.verdict is not None
    assert call.screening.verdict["evidence"]["screening_outcome"] == "declined"  # type: ignore[index,call-overload]


async def test_the_screener_still_talking_is_waited_through_up_to_the_bound() -> None:
    call = Call(FakeStt([SCREENING_GOOGLE.text, "Please stay on the line."]), wait_s=3.0)
    async with call.tasks:
        await call.hear(screener_prompt())
        await call.hear(person_hello("Please stay on the line.", VOICE, RATE))
        assert call.ended == [SCREENING_TIMEOUT]  # 3 s of audio after the message: nobody
    assert call.line.said == [SCREENING_MESSAGE]


async def test_a_greeting_that_ends_in_silence_without_a_screeners_words_is_a_machine() -> None:
    voicemail = "Hi, you have reached Sam. I am away from the phone right now, sorry."
    call = Call(FakeStt([voicemail]))
    async with call.tasks:
        audio, _ = machine_greeting(voicemail, VOICE, RATE, beep_hz=None)
        await call.hear(audio)
    assert call.ended == [VOICEMAIL]
    assert [v["result"] for v in call.verdicts] == ["machine"]
    assert call.line.said == []


async def test_an_unread_greeting_keeps_the_machine_verdict_and_its_message() -> None:
    stt = FakeStt()
    stt.error = ProviderServerError("down")
    call = Call(stt, mode=LEAVE_MESSAGE)
    async with call.tasks:
        await call.hear(screener_prompt())
    assert [v["result"] for v in call.verdicts] == ["machine"]
    assert call.line.final == ["Please call us back."]  # left after the greeting
    assert call.screening.machine


async def test_without_stt_a_long_greeting_is_a_machine_at_once() -> None:
    call = Call(None)
    async with call.tasks:
        await call.hear(screener_prompt()[: RATE * 2 * 4])  # its first 4 s
    assert call.ended == [VOICEMAIL]


def test_the_default_screening_message_says_who_calls_and_why() -> None:
    config = config_of({"voicemail_detection": DETECT, "first_message": "Hi."})
    settings = voicemail_settings(
        config, outbound=True, business_name="Acme Corp", metadata={"purpose": "your order."}
    )
    assert settings is not None
    assert settings.screening_message == (
        "Hi, this is the virtual assistant of Acme Corp, calling about your order. "
        "I will wait on the line for them."
    )
    assert default_screening_message(None, None) == (
        "Hi, this is a virtual assistant. I will wait on the line for them."
    )
    own = fill_config(
        config_of({"voicemail_detection": DETECT, "screening_message": "Hi, {{who}} here."}),
        {"who": "the city library"},
    )
    mine = voicemail_settings(own, outbound=True, business_name="Acme Corp")
    assert mine is not None
    assert mine.screening_message == "Hi, the city library here."
