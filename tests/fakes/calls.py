"""The call engine and runner as the ``Service`` builds them, for tests that drive calls without
the web app; ``POST /calls/outbound``'s answer as the API writes it; a call served to its end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from voicedock.api.routes.calls import outbound_answer
from voicedock.calls.engine import CallEngine, EngineOptions
from voicedock.calls.engine.outbound import Placed
from voicedock.calls.engine.ringing import RING_GRACE_SECONDS
from voicedock.calls.observer import CallObserver, Observers
from voicedock.calls.outbound.idempotency import IdempotencyKey, Replayed
from voicedock.calls.outbound.request import OutboundRequest
from voicedock.calls.runner import CallRunner, RunnerOptions
from voicedock.calls.runner.call_speech import CallSpeech, ProvidersFactory
from voicedock.calls.runner.node_speech import NodeSpeech
from voicedock.calls.runner.one_call import CallWatcher
from voicedock.calls.runner.presynthesis import Presynthesis
from voicedock.calls.speech_admission import SpeechAdmission
from voicedock.config import Settings
from voicedock.domain.json import JsonObject
from voicedock.domain.records import utcnow
from voicedock.egress.settings import egress_guard
from voicedock.pbx.base import Pbx
from voicedock.store.base import Store

if TYPE_CHECKING:
    from voicedock.calls.tools.executor import ToolServer
    from voicedock.pipeline.dialogue.turn_engine import ConversationConfig


def calls_of(
    store: Store,
    pbx: Pbx,
    settings: Settings,
    clock: Callable[[], datetime] = utcnow,
    *,
    observers: Iterable[CallObserver] = (),
    ring_grace: float = RING_GRACE_SECONDS,
    providers: ProvidersFactory | None = None,
    conversation: ConversationConfig | None = None,
    close_timeout: float = 10.0,
    tool_server: ToolServer | None = None,
    admission: SpeechAdmission | None = None,
    watchers: tuple[CallWatcher, ...] = (),
) -> tuple[CallEngine, CallRunner]:
    """The engine and its runner, in the service's order: the node's speech, a call's
    providers (``providers``: the tests' own), the presynthesis, the engine, the runner;
    ``admission``: the tests' own offline speech admission, else the node's; ``watchers`` hear
    each served call's events."""
    speech = NodeSpeech(settings.speech, previews=settings.limits.previews_per_node)
    call_speech = CallSpeech(
        store, settings.speech, settings.byok, egress_guard(settings), providers
    )
    synthesis = speech.synthesis
    presynthesis = None if synthesis is None else Presynthesis(synthesis, call_speech, pbx)
    options = EngineOptions(
        observers=Observers(*observers),
        presynthesizer=presynthesis,
        admission=admission if admission is not None else speech.admission,
        ring_grace=ring_grace,
    )
    engine = CallEngine(store, pbx, settings, clock, options)
    runner_options = RunnerOptions(
        speech,
        call_speech,
        presynthesis,
        conversation=conversation,
        close_timeout=close_timeout,
        tool_server=tool_server,
        watchers=watchers,
    )
    runner = CallRunner(engine, pbx, store, settings, runner_options)
    return engine, runner


@dataclass(frozen=True, slots=True)
class Answer:
    """``POST /calls/outbound``'s answer: its status and body, and whether it was replayed."""

    status: int
    body: JsonObject
    replayed: bool = False


async def place_outbound(
    engine: CallEngine,
    org_id: str,
    request: OutboundRequest,
    key: IdempotencyKey | None = None,
    api_key_id: str | None = None,
) -> Answer:
    """The engine's placing, answered as the API answers it (``api/routes/calls.py``)."""
    async with engine.outbound.ask(org_id, request, key, api_key_id) as ask:
        if isinstance(ask, Replayed):
            result: Placed | Replayed = ask
        else:
            result = await ask.place(outbound_answer(ask.placing))
    if isinstance(result, Replayed):
        return Answer(result.answer.status, result.answer.body, replayed=True)
    answer = outbound_answer(result)
    return Answer(answer.status, answer.body)


async def call_finished(runner: CallRunner, call_id: str) -> None:
    """Until the runner's task of the call has handed in its record."""
    running = runner.served.get(call_id)
    if running is not None and running.task is not None:
        await asyncio.wait([running.task])
