"""A call-screening assistant told from its words: its prompt, its decline, a person after it."""

from __future__ import annotations

import pytest

from voicedock.pipeline.hearing.call_screening import (
    DECLINED,
    PERSON,
    SCREENER,
    is_screening_prompt,
    screener_reply,
)
from voicedock_lab.greetings import MACHINE_TEXTS, PERSON_TEXTS
from voicedock_lab.utterances import SCREENING_DECLINE, SCREENING_GOOGLE, SCREENING_IOS

pytestmark = pytest.mark.unit

PROMPTS = (
    SCREENING_GOOGLE.text,
    SCREENING_IOS.text,
    # as a recogniser writes them: contractions spelled out or dropped, no punctuation
    "hi the person you are calling is using a screening service from google and will get a "
    "copy of this conversation go ahead and say your name and why you are calling",
    "Hi, if you record your name and reason for calling, I will see if this person is available",
    "Hi, I'm Call Assist by Google, recording this call for the person you're trying to reach. "
    "Before I try to connect you, can I ask what you're calling about?",
    "Hi, this call is being screened by Google. Please state the purpose of your call.",
)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_a_screening_prompt_is_told_from_its_words(prompt: str) -> None:
    assert is_screening_prompt(prompt)


@pytest.mark.parametrize("text", [*MACHINE_TEXTS, *PERSON_TEXTS, ""])
def test_voicemail_greetings_and_people_are_not_screeners(text: str) -> None:
    assert not is_screening_prompt(text)


def test_a_voicemail_greeting_asking_for_the_reason_is_still_a_machine() -> None:
    greeting = (
        "You have reached Sam. Please record your name and reason for calling after the tone."
    )
    assert not is_screening_prompt(greeting)


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        (SCREENING_DECLINE.text, DECLINED),
        ("Please remove this number from your contact list. Thanks and goodbye.", DECLINED),
        ("They can't take your call right now.", DECLINED),
        ("Thanks, please stay on the line.", SCREENER),
        (SCREENING_IOS.text, SCREENER),  # the prompt said again
        ("Hello, who is this?", PERSON),
        ("Hi, yes?", PERSON),
        ("This is Maria speaking.", PERSON),
    ],
)
def test_what_the_line_says_after_the_screener_was_answered(text: str, reply: str) -> None:
    assert screener_reply(text) == reply
