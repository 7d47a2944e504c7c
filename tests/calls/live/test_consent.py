"""The consent plan on a live call (``calls/live/consent.py``): the outcome of each mode, the
disclosure said before the first message, the window's keys kept from the dialogue, and the
held recording written or discarded by the caller's answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest

from voicedock.calls.assistants.config import check_config
from voicedock.calls.live.consent import (
    CONSENT_REFUSED,
    ConsentOutcome,
    ConsentWindow,
    decide,
)
from voicedock.calls.live.transcript_delivery import TranscriptDelivery
from voicedock.domain.assistant_config import ConsentMode, ConsentPlan, config_of
from voicedock.domain.json import JsonObject
from voicedock.errors import BadRequest
from voicedock.media.recording import CallRecorder
from voicedock.pipeline.dialogue.events import CallEvent, CallEvents, ConsentDecided, TranscriptKept
from voicedock.pipeline.frames import TranscriptEntry

pytestmark = pytest.mark.unit

DISCLOSURE = "This call is recorded and handled by an AI assistant. Press 9 to opt out."
FIRST = "Hello, how can I help?"


@pytest.mark.parametrize(
    ("mode", "pressed", "on_refusal", "expected"),
    [
        ("announce", False, "no_recording", ConsentOutcome("announced", True, False)),
        ("announce", True, "end_call", ConsentOutcome("announced", True, False)),
        ("opt_out_keypad", False, "end_call", ConsentOutcome("accepted", True, False)),
        ("opt_out_keypad", True, "no_recording", ConsentOutcome("refused", False, False)),
        ("opt_out_keypad", True, "end_call", ConsentOutcome("refused", False, True)),
        ("opt_in_keypad", True, "end_call", ConsentOutcome("accepted", True, False)),
        ("opt_in_keypad", False, "end_call", ConsentOutcome("no_answer", False, False)),
        (
            "opt_out_keypad",
            True,
            "no_recording_no_transcript",
            ConsentOutcome("refused", False, False, transcribed=False),
        ),
        (
            "opt_out_keypad",
            False,
            "no_recording_no_transcript",
            ConsentOutcome("accepted", True, False),
        ),
        (
            "opt_in_keypad",
            False,
            "no_recording_no_transcript",
            ConsentOutcome("no_answer", False, False, transcribed=False),
        ),
    ],
)
def test_each_mode_decides_by_the_key(
    mode: ConsentMode, pressed: bool, on_refusal: str, expected: ConsentOutcome
) -> None:
    assert decide(mode, pressed, on_refusal) == expected


class FakeDialogue:
    """Says each text for 50 ms; remembers what it was said and the keys it was given."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.keys: list[str] = []
        self._until = 0.0

    async def say(self, text: str) -> None:
        self.said.append(text)
        self._until = asyncio.get_running_loop().time() + 0.05

    @property
    def assistant_audible(self) -> bool:
        return asyncio.get_running_loop().time() < self._until

    def feed_dtmf(self, digit: str) -> None:
        self.keys.append(digit)


def told(handler: Callable[[JsonObject], object]) -> CallEvents:
    """A call's events whose consent outcomes go to ``handler``."""
    events = CallEvents()
    events.subscribe(ConsentDecided, lambda decided: handler(decided.outcome))
    return events


def plan(mode: ConsentMode, on_refusal: str = "no_recording") -> ConsentPlan:
    return ConsentPlan(
        mode=mode,
        message=DISCLOSURE,
        key="9",
        timeout_seconds=0.3,
        on_refusal=on_refusal,  # type: ignore[arg-type]
    )


def new_recorder(path: Path) -> CallRecorder:
    return CallRecorder(path, 8000)


def outcome(window: ConsentWindow) -> object:
    return None if window.outcome is None else window.outcome["outcome"]


def feed(recorder: CallRecorder, seconds: float) -> None:
    for _ in range(int(seconds * 50)):
        recorder.caller(np.full(160, 500, dtype=np.int16))
        recorder.assistant(np.full(160, -500, dtype=np.int16))


async def run_window(
    window: ConsentWindow, dialogue: FakeDialogue, keys: str = "", at: float = 0.02
) -> None:
    async def press() -> None:
        await asyncio.sleep(at)
        for key in keys:
            if not window.takes(key):
                dialogue.feed_dtmf(key)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(window.run(dialogue))  # type: ignore[arg-type]
        tg.create_task(press())


async def test_opt_out_refused_by_the_key_discards_the_recording_and_goes_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "refused.wav"
    recorder = new_recorder(path)
    ended: list[str] = []
    window = ConsentWindow(plan("opt_out_keypad"), FIRST, recorder, end=ended.append)
    feed(recorder, 2.0)  # held: more than a flush's worth
    dialogue = FakeDialogue()
    await run_window(window, dialogue, keys="19")
    assert dialogue.said == [DISCLOSURE, FIRST]  # the first message after the disclosure
    assert dialogue.keys == []  # the window's keys, none for the dialogue
    assert outcome(window) == "refused"
    assert window.outcome is not None
    assert window.outcome["mode"] == "opt_out_keypad"
    assert ended == []
    feed(recorder, 1.0)
    assert await recorder.aclose() == 0.0
    assert not path.exists()
    assert window.takes("9") is False  # decided: later keys are the dialogue's


async def test_opt_out_without_the_key_accepts_and_records_from_the_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "accepted.wav"
    recorder = new_recorder(path)
    window = ConsentWindow(plan("opt_out_keypad"), FIRST, recorder, end=lambda _: None)
    feed(recorder, 2.0)
    dialogue = FakeDialogue()
    await run_window(window, dialogue, keys="1")  # another key: no answer, still the window's
    assert dialogue.keys == []
    assert outcome(window) == "accepted"
    assert dialogue.said == [DISCLOSURE, FIRST]
    assert await recorder.aclose() == pytest.approx(2.0)
    assert path.exists()


async def test_a_refusal_that_ends_the_call_says_no_first_message(tmp_path: Path) -> None:
    recorder = new_recorder(tmp_path / "ended.wav")
    ended: list[str] = []
    window = ConsentWindow(plan("opt_out_keypad", "end_call"), FIRST, recorder, end=ended.append)
    dialogue = FakeDialogue()
    await run_window(window, dialogue, keys="9")
    assert ended == [CONSENT_REFUSED]
    assert dialogue.said == [DISCLOSURE]
    await recorder.aclose()
    assert not (tmp_path / "ended.wav").exists()


async def test_the_decided_outcome_is_told_before_the_call_ends() -> None:
    happened: list[str] = []
    window = ConsentWindow(
        plan("opt_out_keypad", "end_call"),
        FIRST,
        None,
        end=lambda reason: happened.append(f"end {reason}"),
        events=told(lambda outcome: happened.append(f"told {outcome['outcome']}")),
    )
    await run_window(window, FakeDialogue(), keys="9")
    assert happened == ["told refused", f"end {CONSENT_REFUSED}"]


async def test_an_outcome_the_end_decides_is_not_told() -> None:
    outcomes: list[object] = []
    window = ConsentWindow(
        plan("opt_in_keypad"), FIRST, None, end=lambda _: None, events=told(outcomes.append)
    )
    window.close()  # the call ended before the window's answer: its result carries it
    assert outcome(window) == "no_answer"
    assert outcomes == []


async def test_opt_in_records_only_with_the_key(tmp_path: Path) -> None:
    silent = new_recorder(tmp_path / "silent.wav")
    window = ConsentWindow(plan("opt_in_keypad"), FIRST, silent, end=lambda _: None)
    feed(silent, 1.5)
    await run_window(window, FakeDialogue())
    assert outcome(window) == "no_answer"
    await silent.aclose()
    assert not (tmp_path / "silent.wav").exists()
    pressed = new_recorder(tmp_path / "pressed.wav")
    window = ConsentWindow(plan("opt_in_keypad"), FIRST, pressed, end=lambda _: None)
    feed(pressed, 1.5)
    await run_window(window, FakeDialogue(), keys="9")
    assert outcome(window) == "accepted"
    await pressed.aclose()
    assert (tmp_path / "pressed.wav").exists()


async def test_announce_takes_no_key_and_holds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "announced.wav"
    recorder = new_recorder(path)
    window = ConsentWindow(plan("announce"), FIRST, recorder, end=lambda _: None)
    feed(recorder, 1.5)
    await asyncio.sleep(0.05)
    assert path.exists()  # written as usual
    dialogue = FakeDialogue()
    await run_window(window, dialogue, keys="9")
    assert dialogue.keys == ["9"]
    assert outcome(window) == "announced"
    assert dialogue.said == [DISCLOSURE, FIRST]
    await recorder.aclose()


async def test_a_call_ended_before_the_answer_is_not_recorded(tmp_path: Path) -> None:
    path = tmp_path / "hung-up.wav"
    recorder = new_recorder(path)
    window = ConsentWindow(plan("opt_out_keypad"), FIRST, recorder, end=lambda _: None)
    feed(recorder, 1.5)
    window.close()  # the caller hung up during the message
    assert outcome(window) == "no_answer"
    await recorder.aclose()
    assert not path.exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"message": DISCLOSURE}, "consent_plan.mode is required"),
        ({"mode": "ask", "message": DISCLOSURE}, "consent_plan.mode must be one of"),
        ({"mode": "announce"}, "consent_plan.message must be a text of 1-500 characters"),
        ({"mode": "announce", "message": " "}, "consent_plan.message must be a text"),
        ({"mode": "opt_out_keypad", "message": "x", "key": "A"}, "consent_plan.key must be"),
        (
            {"mode": "opt_out_keypad", "message": "x", "timeout_seconds": 31},
            "consent_plan.timeout_seconds must be a number of seconds, 1-30",
        ),
        (
            {"mode": "opt_out_keypad", "message": "x", "on_refusal": "hang_up"},
            "consent_plan.on_refusal must be one of",
        ),
        ({"mode": "announce", "message": "x", "voice": "a"}, "consent_plan: unknown field"),
        ("announce", "consent_plan must be a JSON object"),
    ],
)
def test_a_bad_plan_is_refused_naming_the_field(value: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message.replace("(", r"\(")):
        check_config({"consent_plan": value}, "assistant", allow_profile=False)


def test_a_good_plan_is_kept_and_typed() -> None:
    given = {
        "mode": "opt_out_keypad",
        "message": DISCLOSURE,
        "key": "9",
        "timeout_seconds": 5,
        "on_refusal": "end_call",
    }
    checked = check_config({"consent_plan": given}, "assistant", allow_profile=False)
    assert checked["consent_plan"] == given
    typed = config_of(checked).consent_plan
    assert isinstance(typed, ConsentPlan)
    assert (typed.mode, typed.on_refusal) == ("opt_out_keypad", "end_call")


@contextlib.asynccontextmanager
async def transcript_delivery() -> AsyncIterator[tuple[TranscriptDelivery, list[str]]]:
    """A call's transcript delivery and what it delivered, drained on leaving."""
    delivered: list[str] = []

    async def deliver(event: CallEvent) -> None:
        assert isinstance(event, TranscriptKept)
        delivered.append(event.entry.content)

    events = CallEvents()
    events.listen(deliver, TranscriptKept)
    async with events:
        yield TranscriptDelivery(events), delivered


async def delivered_by(on_refusal: str, keys: str) -> tuple[list[str], ConsentWindow]:
    """What a call's transcript delivery delivered of a message said during the window and
    one said after it, and the window."""
    async with transcript_delivery() as (delivery, delivered):
        window = ConsentWindow(
            plan("opt_out_keypad", on_refusal), FIRST, None, end=lambda _: None, transcript=delivery
        )
        delivery.put(TranscriptEntry("assistant", DISCLOSURE, 0.0, 1.0))
        await run_window(window, FakeDialogue(), keys=keys)
        delivery.put(TranscriptEntry("user", "my account is 1234", 2.0, 3.0))
    return delivered, window


async def test_a_refusal_without_transcript_delivers_no_message_of_the_call() -> None:
    delivered, window = await delivered_by("no_recording_no_transcript", keys="9")
    assert outcome(window) == "refused"
    assert delivered == []  # neither the one held during the window nor the later one
    assert window.transcribed is False


async def test_an_acceptance_delivers_the_held_messages_in_order() -> None:
    delivered, window = await delivered_by("no_recording_no_transcript", keys="")
    assert outcome(window) == "accepted"
    assert delivered == [DISCLOSURE, "my account is 1234"]
    assert window.transcribed is True


async def test_a_refusal_without_recording_only_keeps_the_transcript() -> None:
    delivered, window = await delivered_by("no_recording", keys="9")
    assert outcome(window) == "refused"
    assert delivered == [DISCLOSURE, "my account is 1234"]
    assert window.transcribed is True


async def test_a_call_ended_before_the_answer_withholds_its_transcript() -> None:
    async with transcript_delivery() as (delivery, delivered):
        window = ConsentWindow(
            plan("opt_in_keypad", "no_recording_no_transcript"),
            FIRST,
            None,
            end=lambda _: None,
            transcript=delivery,
        )
        delivery.put(TranscriptEntry("user", "hello?", 0.0, 1.0))
        window.close()
    assert outcome(window) == "no_answer"
    assert delivered == []
    assert window.transcribed is False
