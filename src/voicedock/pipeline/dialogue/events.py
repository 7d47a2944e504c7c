"""What a live call signals, and the bus its listeners subscribe to.

A live call owns one ``CallEvents``. Its parts publish what happened, as one of the typed
events below (``emit``: synchronous and cheap, it runs on the audio path); whoever needs to
know subscribes to the kinds it wants, instead of handing a callback to a constructor:

    events = CallEvents()
    events.subscribe(ProviderSwitched, count_switch)        # told inside emit, in order
    events.listen(store_write, TranscriptKept, HandedOver)  # its own queue and task
    async with events:                                      # the listeners' tasks run
        ...                                                 # the call
    # closed: every event emitted before was handed to its listeners

A subscriber (``subscribe``) is told inside ``emit``: it must be cheap and must not block. A
listener (``listen``) gets its events through a queue of its own, awaited one at a time and in
the order they were emitted (the kinds it listens to, together), by a task the bus's
``Supervisor`` owns; events emitted before the bus started wait for it. A subscriber or
listener that fails is logged and told the next event: one failing listener never stops the
call or the others. ``aclose`` (idempotent) lets each listener finish what was emitted before,
then stops its task; what is emitted after is dropped.

The vocabulary, by who emits it:

    SpeechStarted         the dialogue: the caller started speaking (the turn engine's VAD,
                          a speech-to-speech provider's server VAD)
    SpeechEnded           the dialogue: the caller's speech ended (endpointing decided it)
    TurnCommitted         the dialogue: the caller's turn (words, keys or both) is the
                          model's to answer
    TurnTimed             the turn engine: a spoken turn answered, its latency record
                          complete (the engines that served it; the traces' turn spans)
    CallerCutOff          the cut-off watch (``cut_offs.py``): the caller went on speaking
                          right after being judged finished (an early cut-off)
    ReplyStarted          the dialogue: an assistant message's first audio was queued
    ReplyInterrupted      the dialogue: a barge-in cut what the assistant was saying
    ToolCalled            the dialogue: one of the model's tool calls was carried out
    MessageAdded          the dialogue: a final message of the transcript, in spoken order
    TranscriptKept        the live call: a final message it keeps (the consent window may
                          hold them back, and withhold them)
    AnsweringMachineHeard the voicemail screening's verdict, with its evidence
    MenuStep              a step of a phone menu's navigation: heard, pressed, answered
    KnowledgeRetrieved    what a search of the assistant's knowledge bases found (a turn's,
                          or the model's ``search_knowledge``)
    ConsentDecided        the consent window's outcome, as soon as it is decided
    HandedOver            a squad's call handed over to another member
    ProviderSwitched      a fallback plan went on with another provider
    FlowMoved             the assistant's flow entered a node (its start too)

Whoever makes the bus owns it: it starts and closes it (a live call makes its own unless it
is given one, as the runner does to hear the provider switches of the engines it made before).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from voicedock.aio import Started, Supervisor
from voicedock.domain.flows import FlowProgress
from voicedock.domain.json import JsonObject
from voicedock.pipeline.fallback_plans.plan import Switch
from voicedock.pipeline.frames import TranscriptEntry, TurnLatency
from voicedock.pipeline.pools.provider_health import Endpoint

log = logging.getLogger("voicedock.pipeline")


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started speaking (wall time ``at``), as the dialogue's VAD decided."""

    at: float


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The caller's speech ended: endpointing decided the turn is over (wall time ``at``)."""

    at: float


@dataclass(frozen=True, slots=True)
class TurnCommitted:
    """The caller's turn goes to the model: ``spoken`` words, ``keyed`` a keypad entry."""

    spoken: bool
    keyed: bool = False


@dataclass(frozen=True, slots=True)
class TurnTimed:
    """A spoken turn answered: its ``latency`` record, complete (its milliseconds are from the
    end-of-turn decision, at wall time ``decided_at``), the endpoint that served each engine
    in it (None: not known) and the caller's words ``heard`` (for a trace that records
    content; never logged)."""

    latency: TurnLatency
    decided_at: float
    stt: Endpoint | None = None
    llm: Endpoint | None = None
    tts: Endpoint | None = None
    heard: str = ""


@dataclass(frozen=True, slots=True)
class CallerCutOff:
    """The caller went on speaking ``after_ms`` after endpointing judged them finished, within
    ``RESUME_WITHIN_MS`` (``pipeline/hearing/cut_off.py``): they had not finished."""

    after_ms: float


@dataclass(frozen=True, slots=True)
class ReplyStarted:
    """An assistant message's first audio was queued for the caller (wall time ``at``);
    ``filler``: a filler said while the reply is awaited."""

    at: float
    filler: bool = False


@dataclass(frozen=True, slots=True)
class ReplyInterrupted:
    """A barge-in cut ``messages`` assistant messages short (each kept as the caller heard
    it); what was queued and not sent never will be."""

    messages: int


@dataclass(frozen=True, slots=True)
class ToolCalled:
    """One of the model's tool calls carried out: its ``name``, whether it failed, how long it
    took (milliseconds)."""

    name: str
    failed: bool
    ms: float


@dataclass(frozen=True, slots=True)
class MessageAdded:
    """A final message added to the dialogue's transcript, once no earlier turn is open."""

    entry: TranscriptEntry


@dataclass(frozen=True, slots=True)
class TranscriptKept:
    """A final message the call keeps for its record (released by its consent window)."""

    entry: TranscriptEntry


@dataclass(frozen=True, slots=True)
class FlowMoved:
    """The assistant's flow entered a node (its start, or where ``next_step`` led): where it
    is, the nodes it went through and the fields extracted (``flow_run.py``)."""

    progress: FlowProgress


@dataclass(frozen=True, slots=True)
class AnsweringMachineHeard:
    """The voicemail screening's verdict (``{"result", "confidence", ...}``)."""

    verdict: JsonObject


@dataclass(frozen=True, slots=True)
class MenuStep:
    """A step of a phone menu's navigation (``{"heard", "at_ms", ...}``: what the line said,
    the keys pressed, the person who picked up)."""

    step: JsonObject


@dataclass(frozen=True, slots=True)
class KnowledgeRetrieved:
    """A search of the assistant's knowledge bases (``{"retrieval", "took_ms", "chunks"}``:
    what it found, for the call's record)."""

    retrieval: JsonObject


@dataclass(frozen=True, slots=True)
class ConsentDecided:
    """The consent window's outcome (``{"mode", "outcome", "at"}``)."""

    outcome: JsonObject


@dataclass(frozen=True, slots=True)
class HandedOver:
    """One handoff made: from the member who spoke to the one who speaks now."""

    source: str
    to: str
    reason: str | None = None  # what the model gave as its reason


@dataclass(frozen=True, slots=True)
class ProviderSwitched:
    """A fallback plan went on with another provider of one engine."""

    switch: Switch


CallEvent: TypeAlias = (
    SpeechStarted
    | SpeechEnded
    | TurnCommitted
    | TurnTimed
    | CallerCutOff
    | ReplyStarted
    | ReplyInterrupted
    | ToolCalled
    | MessageAdded
    | TranscriptKept
    | AnsweringMachineHeard
    | MenuStep
    | KnowledgeRetrieved
    | ConsentDecided
    | HandedOver
    | ProviderSwitched
    | FlowMoved
)
E = TypeVar("E", bound=CallEvent)

_Kinds: TypeAlias = tuple[type[CallEvent], ...]


@dataclass(slots=True)
class _Listener:
    kinds: _Kinds
    handler: Callable[[CallEvent], Awaitable[None]]
    queue: asyncio.Queue[CallEvent | None]


class CallEvents(Started):
    """One live call's events: its subscribers told at once, its listeners each in order."""

    def __init__(self, name: str = "live call") -> None:
        self._name = name
        self._subscribers: list[Callable[[CallEvent], None]] = []
        self._listeners: list[_Listener] = []
        self._tasks = Supervisor(f"{name} events", log)
        self._closed = False

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> None:
        """Tell ``handler`` of each ``kind`` event inside ``emit`` (cheap, never blocking)."""

        def told(event: CallEvent) -> None:
            if isinstance(event, kind):
                handler(event)

        self._subscribers.append(told)

    def listen(
        self, handler: Callable[[CallEvent], Awaitable[None]], *kinds: type[CallEvent]
    ) -> None:
        """Await ``handler`` with each event of ``kinds``, one at a time, in emitted order."""
        listener = _Listener(kinds, handler, asyncio.Queue())
        self._listeners.append(listener)
        if self._tasks.running:
            self._tasks.spawn(self._deliver(listener))

    def emit(self, event: CallEvent) -> None:
        """Publish ``event`` (dropped once the bus is closed)."""
        if self._closed:
            return
        for told in self._subscribers:
            try:
                told(event)
            except Exception:
                log.exception("%s: %s subscriber failed", self._name, type(event).__name__)
        for listener in self._listeners:
            if isinstance(event, listener.kinds):
                listener.queue.put_nowait(event)

    async def start(self) -> None:
        await self._tasks.start()
        for listener in self._listeners:
            self._tasks.spawn(self._deliver(listener))

    async def aclose(self) -> None:
        """Let every listener take what was emitted so far, then stop (idempotent)."""
        if not self._closed:
            self._closed = True
            for listener in self._listeners:
                listener.queue.put_nowait(None)
        await self._tasks.drain()
        await self._tasks.aclose()

    async def _deliver(self, listener: _Listener) -> None:
        while (event := await listener.queue.get()) is not None:
            try:
                await listener.handler(event)
            except Exception:
                log.exception("%s: %s listener failed", self._name, type(event).__name__)
