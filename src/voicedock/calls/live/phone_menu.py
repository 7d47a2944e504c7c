"""A company's phone menu on a live outbound call: navigated for the assistant's goal, its hold
waited through, the person who picks up greeted (``phone_menu`` in the configuration).

From the answer, the callee's audio goes to ``MenuNavigation`` instead of the dialogue
(``listening``). It is cut into utterances (``pipeline/hearing/line_utterances.py``, Silero
VAD where installed: hold music is not speech), each transcribed with the call's STT and read
(``pipeline/hearing/phone_menu.py``):

* a **menu** ("For appointments, press 2."): its words are gathered until the line has been
  quiet ``MENU_END_MS`` (the menu ended: keys pressed during it may be lost), then the call's
  model is asked, with the goal, the menu's words and the navigation so far, and offered one
  tool, ``navigate_menu`` (``keys``: digits with the pauses ``w`` 0.5 s and ``W`` 1 s); the keys
  it gives are played on the call's leg by the PBX (``MenuKeys``); no call: it waits;
* **hold** (announcements, music, silence): waited through in silence;
* a **person** ("Good morning, Riverside Clinic."): the navigation is over (``picked_up``); the
  call's opening (``opening.py``) tells the model's context what the person said (``note``)
  and says what the call opens with: the AI disclosure, the consent window, the first message
  (none of them: the model answers the person). From then on the dialogue hears the line.

Every step is told on the call's events (``MenuStep``: ``heard`` ``menu`` / ``hold`` /
``person``, with ``words``; ``pressed``; ``music_ms`` and ``quiet_ms`` of the hold so far;
``at_ms`` of the line's audio since the answer). No person within ``max_wait_s`` of the line's
audio: the call ends ``phone-menu-timeout``. The call's assistant never speaks before the
person; voicemail detection is not run on such a call (a menu is a long greeting too).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from voicedock.aio import Supervisor
from voicedock.domain.assistant_config import (
    PHONE_MENU_DEFAULT_WAIT_S,
    AssistantConfig,
    given,
    set_or,
)
from voicedock.domain.json import JsonObject
from voicedock.errors import PbxError
from voicedock.pbx.base import DTMF_PATTERN, DtmfPbx, require_dtmf_digits
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.events import CallEvents, MenuStep
from voicedock.pipeline.fallback_plans.llm import LlmPlan
from voicedock.pipeline.frames import ChatMessage, ToolCall
from voicedock.pipeline.hearing.line_utterances import LineUtterances, Utterance
from voicedock.pipeline.hearing.phone_menu import HOLD, MENU, PERSON, line_says
from voicedock.pipeline.providers.base import Llm, ProviderError, Stt, ToolCallingLlm
from voicedock.pipeline.tools import NAVIGATE_MENU, ToolSpec, parse_arguments

log = logging.getLogger("voicedock.calls")

PHONE_MENU_TIMEOUT: Final = "phone-menu-timeout"  # the end reason: nobody picked up in time
UTTERANCE_END_MS = 700  # silence after speech that ends an utterance of the line
MENU_END_MS = 1_500  # quiet after a menu's words: the menu is over, its keys are pressed
NAVIGATION_MAX = 40  # messages of the navigation kept for the model (the newest)

NAVIGATE: Final = ToolSpec(
    NAVIGATE_MENU,
    "Press keys on the phone menu of the line you called. Call it once the menu offers "
    "what the goal needs; do not call it to wait.",
    {
        "type": "object",
        "properties": {
            "keys": {
                "type": "string",
                "pattern": DTMF_PATTERN,
                "description": "The keys: 0-9, * and #; w waits half a second, W a second.",
            }
        },
        "required": ["keys"],
    },
)
PROMPT: Final = (
    "You are on a phone call you placed to a company's line, which answered with a phone "
    "menu. Your goal: {goal}\n"
    "Each message is what the line said. When a menu offers the option that serves your goal, "
    "call navigate_menu with its keys. When none does, answer without a tool call: the line "
    "plays on. Never speak to the line."
)


@dataclass(frozen=True, slots=True)
class PhoneMenuSettings:
    goal: str
    max_wait_s: float = PHONE_MENU_DEFAULT_WAIT_S


def phone_menu_settings(config: AssistantConfig, *, outbound: bool) -> PhoneMenuSettings | None:
    """The call's phone-menu navigation (None: none asked, or an inbound call)."""
    plan = set_or(config.phone_menu, None)
    if plan is None or not outbound:
        return None
    return PhoneMenuSettings(plan.goal, given(plan.max_wait_seconds, PHONE_MENU_DEFAULT_WAIT_S))


class MenuKeys(Protocol):
    """The call's leg, for the keys a menu asks (the PBX plays them as RFC 4733 events)."""

    async def press(self, keys: str) -> None:
        """Play ``keys`` (``require_dtmf_digits``); ``PbxError`` when they could not be."""
        ...


@dataclass(frozen=True, slots=True)
class LegKeys:
    """``MenuKeys`` on a PBX that plays DTMF: the keys on the leg of ``call_id``."""

    pbx: DtmfPbx
    call_id: str

    async def press(self, keys: str) -> None:
        await self.pbx.send_dtmf(self.call_id, keys)


class MenuNavigation:
    def __init__(
        self,
        settings: PhoneMenuSettings,
        sample_rate: int,
        *,
        events: CallEvents,
        tasks: Supervisor,
        end: Callable[[str], None],
    ) -> None:
        """``events`` is told each step; ``tasks`` runs the reading and the model's turns;
        ``end`` ends the call."""
        self._settings, self._rate = settings, sample_rate
        self._events, self._tasks, self._end = events, tasks, end
        self._line = LineUtterances(sample_rate, end_ms=UTTERANCE_END_MS, silero=True)
        self._wait_ms = int(settings.max_wait_s * 1000)
        self._stt: Stt | None = None
        self._llm: Llm | None = None
        self._keys: MenuKeys | None = None
        self._reading = asyncio.Lock()  # one utterance (or model turn) at a time, in order
        self._menu: list[str] = []  # the menu's words since its keys were last asked for
        self._navigation: list[ChatMessage] = []
        self._holding = False  # the last step told was hold
        self.answered = False  # a person picked up, or nobody did in time
        self.picked_up = asyncio.Event()  # a person did: ``note`` tells the model
        self.note = ""
        self.machine = False  # (``CallerInput``: never a machine's audio to drop)

    def use(self, stt: Stt | None, llm: Llm | None, keys: MenuKeys | None) -> None:
        """The call's STT and model (a fallback plan's first), and its leg's keys, once its
        providers are made."""
        self._stt, self._keys = stt, keys
        self._llm = llm.primary if isinstance(llm, LlmPlan) else llm

    @property
    def listening(self) -> bool:
        """The line is the navigation's: nobody picked up yet."""
        return not self.answered

    async def hear(self, pcm: bytes, _dialogue: Dialogue) -> None:
        """The line's audio at the dialogue's rate, while ``listening`` (the dialogue hears
        none of it: the call's opening greets the person, ``opening.py``)."""
        line = self._line
        for utterance in line.feed(pcm):
            self._tasks.spawn(self._read(utterance))
        if self.answered or self._reading.locked():
            return
        if self._menu and not line.in_utterance and line.quiet_for_ms >= MENU_END_MS:
            menu, self._menu = " ".join(self._menu), []
            self._tasks.spawn(self._navigate(menu))
        elif line.now_ms >= self._wait_ms:
            self.answered = True  # the line goes to the dialogue, which ends with the call
            self._step({"heard": "timeout"})
            log.info("call: phone menu: nobody picked up in %.0f s", self._settings.max_wait_s)
            self._end(PHONE_MENU_TIMEOUT)

    async def _read(self, utterance: Utterance) -> None:
        async with self._reading:
            if self.answered or self._stt is None:
                return
            try:
                text = (await self._stt.transcribe(utterance.pcm, self._rate)).strip()
            except ProviderError as exc:  # unheard: the line goes on
                log.warning("phone menu: the line not transcribed (%s)", type(exc).__name__)
                return
            heard = line_says(text)
            if heard == MENU:
                self._menu.append(text)
                self._step({"heard": MENU, "words": text}, utterance.at_ms)
            elif heard == HOLD:
                if not self._holding:
                    self._step({"heard": HOLD, "words": text}, utterance.at_ms)
                self._holding = True
                return
            else:
                self._answered(text, utterance.at_ms)
            self._holding = False

    async def _navigate(self, menu: str) -> None:
        """The menu ended: the model chooses its keys (or none), which are pressed."""
        async with self._reading:
            if self.answered:
                return
            self._navigation.append(ChatMessage("user", menu))
            call = await self._choose()
            if call is None:
                self._step({"heard": MENU, "pressed": None})
                return
            try:
                keys = require_dtmf_digits(str(parse_arguments(call).get("keys", "")))
            except ValueError:
                self._navigation += [
                    ChatMessage("assistant", "", (call,)),
                    ChatMessage("tool", "Those are not keys.", tool_call_id=call.id),
                ]
                return
            pressed = await self._press(keys)
            self._navigation += [
                ChatMessage("assistant", "", (call,)),
                ChatMessage(
                    "tool",
                    f"Pressed {keys}." if pressed else "The keys could not be sent.",
                    tool_call_id=call.id,
                ),
            ]
            self._step({"heard": MENU, "pressed": keys if pressed else None})

    async def _choose(self) -> ToolCall | None:
        """The model's ``navigate_menu`` call for the navigation so far (None: it waits, or
        cannot be asked)."""
        llm = self._llm
        if not isinstance(llm, ToolCallingLlm):
            log.warning("phone menu: the call's model cannot call tools: the menu waits")
            return None
        prompt = ChatMessage("system", PROMPT.format(goal=self._settings.goal))
        messages = [prompt, *self._navigation[-NAVIGATION_MAX:]]
        try:
            async for part in llm.stream_with_tools(messages, [NAVIGATE]):
                if isinstance(part, ToolCall) and part.name == NAVIGATE_MENU:
                    return part
        except ProviderError as exc:
            log.warning("phone menu: the model failed (%s)", type(exc).__name__)
        return None

    async def _press(self, keys: str) -> bool:
        if self._keys is None:
            log.warning("phone menu: this call's PBX cannot send keys")
            return False
        try:
            await self._keys.press(keys)
        except PbxError as exc:
            log.info("phone menu: keys not sent: %s", type(exc).__name__)
            return False
        return True

    def _answered(self, text: str, at_ms: int) -> None:
        """A person picked up: the dialogue's from now on."""
        self.answered = True
        self._step({"heard": PERSON, "words": text}, at_ms)
        log.info("call: phone menu: a person picked up")
        steps = [m.content for m in self._navigation if m.role == "tool"]
        done = f" You navigated its menu ({' '.join(steps)})." if steps else ""
        self.note = (
            f"The line you called answered with a phone menu.{done} A person picked up: {text}"
        )
        self.picked_up.set()

    def _step(self, step: JsonObject, at_ms: int | None = None) -> None:
        line = self._line
        step |= {"at_ms": line.now_ms if at_ms is None else at_ms}
        step |= {"music_ms": line.music_ms, "quiet_ms": line.quiet_ms}
        self._events.emit(MenuStep(step))
