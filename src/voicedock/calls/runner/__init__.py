"""The live conversation of every answered call, from the answer to its stored record.

``CallRunner`` builds its parts in order and owns their lifecycle (``start``, ``aclose``):

* ``events`` (``event_sink.py``): the PBX's one event sink; each event applied by the engine,
  then the call served (an answer) or its conversation stopped (a hang-up);
* ``resuming`` (``resuming.py``): start-up recovery's ``CallResumer``, a call adopted after a
  restart served again;
* ``one_call.py``: one call served, from its media to its record (after a media loss, the PBX's
  word first: ``pbx_verdict.py``), each a ``RunningCall`` (``running_call.py``) among the
  ``ServedCalls`` (``served.py``);
* the node's speech it is given (``node_speech.py``: the synthesis and recognition pools,
  admission control, the schema workers, their warm-up) and the first messages synthesized
  while calls ring (``presynthesis.py``), both made before the engine, which asks them;
  a call's own providers: ``call_speech.py``.

While the store is unavailable (another process holds the SQLite file, a PostgreSQL failover)
nothing is lost and nothing of a call is reordered: its PBX events (each with its follow-up),
the conversation's transcript turns, the end reason and the final record are writes of the call
in one ``WriteBacklog``, retried in the order they happened until the store is back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from voicedock.aio import Started
from voicedock.calls.engine import CallEngine
from voicedock.calls.runner.call_speech import CallSpeech
from voicedock.calls.runner.event_sink import PbxEventSink
from voicedock.calls.runner.node_speech import NodeSpeech
from voicedock.calls.runner.one_call import SHUTDOWN, CallWatcher, OneCall
from voicedock.calls.runner.presynthesis import Presynthesis
from voicedock.calls.runner.resuming import Resuming
from voicedock.calls.runner.served import ServedCalls
from voicedock.config import ConfigError, Settings
from voicedock.media.output_totals import OutputTotals
from voicedock.pbx.base import MediaPbx, Pbx
from voicedock.store.backlog import WriteBacklog
from voicedock.store.base import Store

if TYPE_CHECKING:  # the audio pipeline is imported when the first call is answered
    from voicedock.calls.tools.executor import ToolServer
    from voicedock.knowledge.search import KnowledgeSearch
    from voicedock.pipeline.dialogue.turn_engine import ConversationConfig


def load_call_path() -> None:
    """The modules a served call runs (its live conversation, the dialogue, the audio
    pipeline), loaded now rather than on the event loop while the first call is answered
    (tens of ms there, every call's audio waiting). At start-up they are among what
    `voicedock serve` then freezes out of the garbage collector's reach (cli.py
    ``garbage_collector``): loaded during a call, every full collection would walk them."""
    import voicedock.calls.live.conversation  # noqa: F401


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """What the runner serves calls with beyond the engine, the PBX, the store and the settings.

    ``speech`` and ``presynthesis`` are made before the engine (which asks them) and owned by
    the runner (closed with it); ``call_speech``: a call's speech providers; ``conversation``
    holds dialogue defaults (given here, they win over ``[speech.endpointing]``: tests set
    their own); ``close_timeout``: how long closing waits for the calls hung up; ``tool_server``
    runs the assistants' webhook tools; ``knowledge`` searches their knowledge bases;
    ``media_totals`` counts the calls' outbound media (for the metrics); ``watchers`` hear each
    served call's events (the metrics' counters)."""

    speech: NodeSpeech
    call_speech: CallSpeech
    presynthesis: Presynthesis | None = None
    conversation: ConversationConfig | None = None
    close_timeout: float = 10.0
    tool_server: ToolServer | None = None
    knowledge: KnowledgeSearch | None = None
    media_totals: OutputTotals = field(default_factory=OutputTotals)
    watchers: tuple[CallWatcher, ...] = ()


class CallRunner(Started):
    def __init__(
        self, engine: CallEngine, pbx: Pbx, store: Store, settings: Settings, options: RunnerOptions
    ) -> None:
        self._pbx = pbx
        self.speech = options.speech
        self.presynthesis = options.presynthesis
        self.call_speech = options.call_speech
        self._egress = options.call_speech.egress
        self._close_timeout = options.close_timeout
        self.media_totals = options.media_totals
        # The calls' writes waiting for an unavailable store, in order per call.
        self.backlog = WriteBacklog()
        self.served = ServedCalls(options.presynthesis)
        from voicedock.calls.tools.mcp import McpTools  # with the call path, not the API's

        # The assistants' MCP servers: tenant URLs, through the guard webhooks use.
        self.mcp = McpTools(self._egress)
        one_call = OneCall(
            engine,
            pbx,
            store,
            settings,
            backlog=self.backlog,
            served=self.served,
            speech=options.speech,
            call_speech=options.call_speech,
            conversation=options.conversation or _dialogue_defaults(settings),
            media_totals=self.media_totals,
            tool_server=options.tool_server,
            watchers=options.watchers,
            mcp=self.mcp,
            knowledge=options.knowledge,
        )
        media_pbx = self.media_pbx
        self.events = PbxEventSink(
            engine, media_pbx, self.backlog, self.served, one_call, options.presynthesis
        )
        self.resuming = Resuming(media_pbx, store, one_call)
        self._started = False
        self._closed = False

    @property
    def media_pbx(self) -> MediaPbx | None:
        return self._pbx if isinstance(self._pbx, MediaPbx) else None

    async def start(self, *, warm_up: bool = False) -> None:
        """Start; with ``warm_up`` (only when the PBX carries media), load what serving a call
        runs (``load_call_path``) and the default speech models, and run each model once, so
        the first call is not slower than the tenth (``NodeSpeech.start``)."""
        if self._started or self._closed:
            return
        self._started = True
        if warm_up and self.media_pbx is not None:
            load_call_path()
        await self.served.start()
        await self.backlog.start()
        if self.presynthesis is not None:
            await self.presynthesis.start()
        await self.speech.start(self._egress, warm_up=warm_up and self.media_pbx is not None)

    async def aclose(self) -> None:
        """Hang up every running call, store its record, stop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.presynthesis is not None:
            self.presynthesis.stop_preparing()
        await self.served.stop(SHUTDOWN, self._close_timeout)
        await self.backlog.aclose(self._close_timeout)  # the records the calls just handed in
        try:
            if self.presynthesis is not None:
                await self.presynthesis.aclose()
            await self.served.aclose()  # the late calls' wind-down
        finally:
            await self.mcp.aclose()
            await self.speech.aclose()


def _dialogue_defaults(settings: Settings) -> ConversationConfig:
    """The dialogue settings every call starts from: ``[speech.endpointing]``'s timing,
    ``[speech.vad]``'s detector (Silero VAD only where its model is installed),
    ``[speech.barge_in]`` and whether ``[speech.noise_suppression]`` denoises the caller's audio
    (RNNoise loaded then)."""
    from voicedock.calls.live.config import (
        with_barge_in_settings,
        with_endpointing_settings,
        with_vad_settings,
    )
    from voicedock.pipeline.hearing import noise, silero_vad

    vad = settings.speech.vad
    if vad.engine == "silero" and not silero_vad.available():
        raise ConfigError(
            "speech.vad.engine", "silero needs faster-whisper's Silero model (not installed)"
        )
    denoised = settings.speech.noise_suppression.enabled
    if denoised and not noise.available():  # loaded here, not on a call's first frame
        raise ConfigError("speech.noise_suppression.enabled", "RNNoise (pyrnnoise) not installed")
    timing = with_endpointing_settings(None, settings.speech.endpointing)
    configured = with_barge_in_settings(with_vad_settings(timing, vad), settings.speech.barge_in)
    return dataclasses.replace(configured, noise_suppression=denoised)
