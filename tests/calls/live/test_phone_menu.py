"""A company's phone menu on a live outbound call (``calls/live/phone_menu.py``): the model is
asked for keys once a menu ended, with the goal and the menu's words; the keys it gives are
pressed; hold (announcements, music) is waited through without asking it; the person who
picks up ends the navigation; nobody in time ends the call. The line's audio is espeak-ng's and
the lab's hold music, the STT a script, the model and the leg fakes."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import AsyncIterator, Sequence
from typing import cast

import numpy as np
import pytest

from pipeline.fakes import FakeStt
from voicedock.aio import Supervisor
from voicedock.calls.live.opening import CallOpening
from voicedock.calls.live.options import LiveOptions
from voicedock.calls.live.phone_menu import (
    MENU_END_MS,
    PHONE_MENU_TIMEOUT,
    MenuNavigation,
    PhoneMenuSettings,
    phone_menu_settings,
)
from voicedock.domain.assistant_config import config_of
from voicedock.errors import PbxError
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.events import CallEvents, MenuStep
from voicedock.pipeline.frames import ChatMessage, ToolCall
from voicedock.pipeline.providers.base import ProviderServerError
from voicedock.pipeline.tools import NAVIGATE_MENU, ToolSpec
from voicedock_lab.greetings import Voice, espeak_pcm, silence
from voicedock_lab.utterances import FRONT_DESK, MENU, PLEASE_HOLD, hold_music_pcm

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]

RATE = 8000
GOAL = "Reach the appointments desk."
VOICE = Voice("en-us", 165)


class Model:
    """Answers each menu with ``keys`` (None: no tool call); ``error``: fails instead."""

    def __init__(self, keys: Sequence[str | None], error: bool = False) -> None:
        self.keys, self.error = list(keys), error
        self.asked: list[list[ChatMessage]] = []
        self.offered: list[list[str]] = []

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        yield "not used"

    async def stream_with_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[str | ToolCall]:
        self.asked.append(list(messages))
        self.offered.append([tool.name for tool in tools])
        if self.error:
            raise ProviderServerError("down")
        keys = self.keys.pop(0) if self.keys else None
        if keys is None:
            yield "The option is not there yet."
            return
        yield ToolCall(f"call-{len(self.asked)}", NAVIGATE_MENU, json.dumps({"keys": keys}))

    async def aclose(self) -> None:
        return None


class Leg:
    def __init__(self, fails: bool = False) -> None:
        self.pressed: list[str] = []
        self.fails = fails

    async def press(self, keys: str) -> None:
        if self.fails:
            raise PbxError("the channel is gone")
        self.pressed.append(keys)


class Line:
    """The line's audio into the navigation as the call's media delivers it."""

    def __init__(
        self, stt: FakeStt, model: Model, leg: Leg | None = None, *, wait_s: float = 900
    ) -> None:
        self.ended: list[str] = []
        self.steps: list[dict[str, object]] = []
        self.tasks = Supervisor("test call", logging.getLogger("test"))
        events = CallEvents()
        events.subscribe(MenuStep, lambda step: self.steps.append(step.step))
        self.leg = leg or Leg()
        self.menu = MenuNavigation(
            PhoneMenuSettings(GOAL, wait_s),
            RATE,
            events=events,
            tasks=self.tasks,
            end=self.ended.append,
        )
        self.menu.use(stt, model, self.leg)
        self.heard_ms = 0  # when each key was pressed, on the line's clock
        self.pressed_at: list[int] = []

    async def hear(self, audio: bytes, chunk: int = 320) -> None:
        dialogue = cast(Dialogue, None)
        for start in range(0, len(audio), chunk):
            if self.menu.listening:
                await self.menu.hear(audio[start : start + chunk], dialogue)
            self.heard_ms += len(audio[start : start + chunk]) * 1000 // (2 * RATE)
            pressed = len(self.leg.pressed)
            await self.tasks.drain()
            if len(self.leg.pressed) > pressed:
                self.pressed_at.append(self.heard_ms)


def said(text: str, after_ms: int = 2500) -> bytes:
    return silence(300, RATE) + espeak_pcm(text, VOICE, RATE) + silence(after_ms, RATE)


async def test_the_menu_is_answered_once_it_ended_hold_is_waited_and_the_person_ends_it() -> None:
    stt = FakeStt([MENU.text, PLEASE_HOLD.text, FRONT_DESK.text])
    model = Model(["2"])
    line = Line(stt, model)
    menu = said(MENU.text)
    async with line.tasks:
        await line.hear(menu)
        assert line.leg.pressed == ["2"]
        await line.hear(said(PLEASE_HOLD.text, 500) + hold_music_pcm() + silence(500, RATE))
        assert not line.menu.picked_up.is_set()
        await line.hear(said(FRONT_DESK.text))
    # Pressed once the menu's words had been followed by MENU_END_MS of quiet, not during it.
    loud = np.flatnonzero(np.abs(np.frombuffer(menu, dtype="<i2").astype(np.int32)) > 300)
    speech_end_ms = int(loud[-1]) * 1000 // RATE
    assert line.pressed_at[0] >= speech_end_ms + MENU_END_MS
    # The model was asked once, about the menu, with the goal and the one tool.
    assert len(model.asked) == 1
    system, menu_words = model.asked[0]
    assert GOAL in system.content
    assert menu_words.content == MENU.text
    assert model.offered == [[NAVIGATE_MENU]]
    # The steps: the menu, its keys, the hold, the person (the music counted, not read).
    assert [s["heard"] for s in line.steps] == ["menu", "menu", "hold", "person"]
    assert line.steps[1]["pressed"] == "2"
    assert cast(int, line.steps[3]["music_ms"]) >= 9_000
    assert len(stt.calls) == 3  # the music was never transcribed
    assert line.menu.picked_up.is_set()
    assert not line.menu.listening
    assert "Pressed 2." in line.menu.note
    assert FRONT_DESK.text in line.menu.note
    assert line.ended == []


async def test_a_menu_without_the_goals_option_presses_nothing_and_the_next_is_answered() -> None:
    first, second = "For billing, press 1.", "For appointments, press 3."
    model = Model([None, "3"])
    line = Line(FakeStt([first, second]), model)
    async with line.tasks:
        await line.hear(said(first))
        assert line.leg.pressed == []
        await line.hear(said(second))
    assert line.leg.pressed == ["3"]
    # The second question carries the first menu and that nothing was pressed for it.
    second_ask = model.asked[1]
    assert [m.content for m in second_ask if m.role == "user"] == [first, second]
    assert [s.get("pressed", "-") for s in line.steps] == ["-", None, "-", "3"]


@pytest.mark.parametrize("keys", ["call me back", ""])
async def test_what_is_not_keys_is_never_pressed(keys: str) -> None:
    model = Model([keys])
    line = Line(FakeStt([MENU.text]), model)
    async with line.tasks:
        await line.hear(said(MENU.text))
    assert line.leg.pressed == []
    assert line.ended == []


async def test_a_failing_model_or_leg_leaves_the_call_waiting() -> None:
    line = Line(FakeStt([MENU.text]), Model([], error=True))
    async with line.tasks:
        await line.hear(said(MENU.text))
    assert line.leg.pressed == []
    assert line.ended == []
    line = Line(FakeStt([MENU.text]), Model(["2"]), Leg(fails=True))
    async with line.tasks:
        await line.hear(said(MENU.text))
    assert line.steps[-1] == line.steps[-1] | {"heard": "menu", "pressed": None}
    assert line.ended == []


async def test_nobody_picking_up_in_time_ends_the_call() -> None:
    line = Line(FakeStt([MENU.text]), Model(["2"]), wait_s=10)
    async with line.tasks:
        await line.hear(said(MENU.text) + hold_music_pcm(6))
    assert line.ended == [PHONE_MENU_TIMEOUT]
    assert line.steps[-1]["heard"] == "timeout"
    assert not line.menu.listening
    assert not line.menu.picked_up.is_set()


class Opened:
    """The dialogue as the opening uses it after a menu."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str | bool]] = []

    async def inject_context(self, content: str, trigger_response: bool) -> None:
        self.done.append(("context", trigger_response))

    async def say(self, text: str) -> None:
        self.done.append(("say", text))


@pytest.mark.parametrize("first", ["Hello, I am calling for Jane Doe.", None])
async def test_the_opening_waits_for_the_person_then_greets_them(first: str | None) -> None:
    tasks = Supervisor("test call", logging.getLogger("test"))
    config = config_of({"phone_menu": {"goal": GOAL}})
    settings = phone_menu_settings(config, outbound=True)
    assert settings == PhoneMenuSettings(GOAL, 900)
    assert phone_menu_settings(config, outbound=False) is None
    opening = CallOpening(
        ConversationConfig(first_message=first),
        config,
        RATE,
        LiveOptions(phone_menu=settings),
        end=lambda _reason: None,
        tasks=tasks,
        events=CallEvents(),
    )
    assert opening.config.first_message is None  # the dialogue says nothing at the answer
    assert opening.menu is not None
    opening.menu.use(FakeStt([FRONT_DESK.text]), Model([]), Leg())
    dialogue = Opened()
    async with tasks:
        opening.start(cast(Dialogue, dialogue), tasks.spawn)  # waits for the person
        pcm = said(FRONT_DESK.text)
        for start in range(0, len(pcm), 320):
            assert opening.menu.picked_up.is_set() or dialogue.done == []
            await opening.menu.hear(pcm[start : start + 320], cast(Dialogue, dialogue))
            await asyncio.sleep(0)  # what it started runs
        async with asyncio.timeout(5):
            await opening.menu.picked_up.wait()
            while len(dialogue.done) < (1 if first is None else 2):
                await asyncio.sleep(0.01)
    # The person's words reach the model's context; the first message, or (none) the model.
    if first is None:
        assert dialogue.done == [("context", True)]
    else:
        assert dialogue.done == [("context", False), ("say", first)]
