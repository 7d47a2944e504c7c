"""A scenario's simulated caller on a real PBX leg (``PbxSimulatedCalls``).

The test call is placed inside the PBX (``pbx.base`` ``RehearsalPbx``: on Asterisk a Local
channel pair, no trunk, no caller number): one side reaches voicedock as an inbound call of
the assistant under test (its offer waits in ``AwaitedCalls``), the other is the caller's leg,
whose audio voicedock opens as any call's (``MediaPbx.call_media``, µ-law as a phone's). On it
the script is played: each text said in the node's offline voice (Piper or espeak-ng, or a
voice the step names), keys pressed as DTMF on the leg, silences kept, a hang-up; then a
``persona``, when the scenario has one, goes on: after each of the assistant's turns the
caller model (``persona.py``) says what the caller says next, spoken the same way, until it
hangs up or has had ``[rehearsal] max_persona_turns`` turns. What the leg
receives goes through the VAD and endpointing (``pipeline/hearing/listener.py``) and each of the
assistant's turns is transcribed by the node's recognizer: the caller's side as heard, and the
time from the end of each caller turn to the first sound of the answer (its latency at the
caller). When the script is done and the assistant quiet, the caller hangs up; the engine's
record of the call (its transcript, end reason, analysis, the transfers it asked for: recorded by
the engine, never dialled) is awaited, and the tools the model called are read back from the
mocks (``tool_mocks.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from voicedock.calls.commands import SIMULATED
from voicedock.calls.engine.inbound import PlacedTestCall
from voicedock.calls.rehearsal.awaited_calls import AwaitedCalls
from voicedock.calls.rehearsal.models import ChatModel
from voicedock.calls.rehearsal.persona import CallerModelFailed, PersonaCaller
from voicedock.calls.rehearsal.test_calls import CallSetup, Observed
from voicedock.calls.rehearsal.tool_mocks import MockedTools
from voicedock.domain.audio import SLIN, ULAW
from voicedock.domain.ids import new_inbound_call_id, new_outbound_call_id
from voicedock.domain.records import Call
from voicedock.domain.rehearsal import (
    HangUpStep,
    HeardTurn,
    PressStep,
    SayStep,
    Scenario,
    SilenceStep,
    WouldTransfer,
)
from voicedock.errors import PbxError
from voicedock.media.call_media import CallMedia
from voicedock.media.codecs import decode, encode, resample
from voicedock.pbx.base import DtmfPbx, MediaPbx, Pbx, RehearsalPbx
from voicedock.pipeline.frames import UserSpeechStarted
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.hearing.listener import Listener, UserUtterance
from voicedock.pipeline.hearing.vad import VadConfig
from voicedock.store.base import Store

log = logging.getLogger("voicedock.calls.rehearsal")

Synthesizer = Callable[[str, str | None], Awaitable[tuple[bytes, int]]]  # text, voice
Transcriber = Callable[[bytes, int], Awaitable[str]]  # 16-bit mono PCM, rate -> text

NO_CALLER_MODEL = (
    "a persona needs a caller model ([rehearsal.caller_model]), and this node has none"
)
ANSWER_WAIT_S = 20.0  # the test call answered
TURN_WAIT_S = 20.0  # the assistant's turn awaited before a step that waits for it
QUIET_S = 1.5  # the assistant is done when quiet this long (after it spoke)
RECORD_WAIT_S = 30.0  # the engine's record of the call, once it ended
LEG_GONE_S = 2.0  # the caller leg's hang-up reported, once asked for
HEARD_WAIT_S = 60.0  # what the leg heard all transcribed, once the call is over
# The assistant's turns as the caller hears them: a pause in a sentence is not its end.
_ENDPOINTING = EndpointingConfig(
    min_speech_ms=120, end_silence_ms=800, silence_timeout_ms=None, max_duration_ms=None
)


class _Hearing:
    """What the caller leg hears: the assistant speaking or quiet, its turns transcribed."""

    def __init__(self, transcribe: Transcriber, began: float) -> None:
        rate = ULAW.sample_rate
        self._listener = Listener(rate, vad=VadConfig(sample_rate=rate), endpointing=_ENDPOINTING)
        self._transcribe = transcribe
        self._began = began
        self.speaking = False
        self.changed = asyncio.Event()
        self.turns_started = 0
        self.quiet_since = time.monotonic()
        self.heard: list[HeardTurn] = []
        self.latencies_ms: list[int] = []
        self._caller_done_at: float | None = None  # a caller turn waiting for its answer
        self._pending: asyncio.Queue[tuple[bytes, int] | None] = asyncio.Queue()
        self._untranscribed = 0  # turns ended, not yet transcribed
        self._transcribed = asyncio.Event()

    def caller_turn_ended(self, at: float) -> None:
        self._caller_done_at = at

    def at_ms(self, moment: float) -> int:
        return int((moment - self._began) * 1000)

    async def listen(self, media: CallMedia) -> None:
        """The leg's frames, until its media ends."""
        async for frame in media.inbound_audio():
            pcm = decode(media.format, frame).tobytes()
            for event in self._listener.process(pcm):
                now = time.monotonic()
                if isinstance(event, UserSpeechStarted):
                    self.speaking = True
                    self.turns_started += 1
                    if self._caller_done_at is not None:
                        waited = now - self._caller_done_at - _ENDPOINTING.min_speech_ms / 1000
                        self.latencies_ms.append(max(0, int(waited * 1000)))
                        self._caller_done_at = None
                elif isinstance(event, UserUtterance):
                    self.speaking = False
                    self.quiet_since = now
                    stopped = event.stopped
                    began = self.at_ms(now) - (stopped.decided_at_ms - stopped.started_at_ms)
                    self._untranscribed += 1
                    self._pending.put_nowait((event.pcm, max(0, began)))
                self.changed.set()

    async def transcribe(self) -> None:
        """Each of the assistant's turns as text, in order, until ``finish``."""
        while (item := await self._pending.get()) is not None:
            pcm, at_ms = item
            try:
                text = (await self._transcribe(pcm, ULAW.sample_rate)).strip()
            finally:
                self._untranscribed -= 1
                self._transcribed.set()
            if text:
                self.heard.append(HeardTurn(role="assistant", text=text, at_ms=at_ms))

    async def all_transcribed(self, within: float = TURN_WAIT_S) -> None:
        """Until every turn heard so far is transcribed (at most ``within`` seconds)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self._untranscribed:
                    self._transcribed.clear()
                    await self._transcribed.wait()

    def in_order(self) -> list[HeardTurn]:
        return sorted(self.heard, key=lambda turn: turn.at_ms)

    def finish(self) -> None:
        self._pending.put_nowait(None)

    async def _until(self, condition: Callable[[], bool], within: float) -> bool:
        try:
            async with asyncio.timeout(within):
                while not condition():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            return False
        return True

    async def assistant_done(self, turns_before: int, within: float = TURN_WAIT_S) -> None:
        """Until the assistant spoke (a turn begun after ``turns_before``) and is quiet
        again for ``QUIET_S``; at most ``within`` seconds."""
        deadline = time.monotonic() + within
        spoke = await self._until(lambda: self.turns_started > turns_before, within)
        while spoke and time.monotonic() < deadline:
            left = deadline - time.monotonic()
            if not await self._until(lambda: not self.speaking, left):
                return
            quiet_for = time.monotonic() - self.quiet_since
            if quiet_for >= QUIET_S:
                return
            await self._until(lambda: self.speaking, min(QUIET_S - quiet_for, left))

    async def assistant_speaking(self, within: float = TURN_WAIT_S) -> None:
        await self._until(lambda: self.speaking, within)


class PbxSimulatedCalls:
    """``SimulatedCalls`` through a PBX that places test calls inside itself."""

    def __init__(
        self,
        pbx: Pbx,
        store: Store,
        placed: AwaitedCalls,
        tools: MockedTools,
        synthesize: Synthesizer,
        transcribe: Transcriber,
        *,
        caller_model: ChatModel | None = None,
        max_persona_turns: int = 10,
    ) -> None:
        """``caller_model``: who plays a scenario's persona (None: a persona ends ``error``)."""
        assert isinstance(pbx, RehearsalPbx)
        assert isinstance(pbx, MediaPbx)
        self._pbx = pbx
        self._dtmf = pbx if isinstance(pbx, DtmfPbx) else None
        self._media = pbx
        self._store = store
        self._placed = placed
        self._tools = tools
        self._synthesize = synthesize
        self._transcribe = transcribe
        self._caller_model = caller_model
        self._max_persona_turns = max_persona_turns

    async def call(self, setup: CallSetup) -> Observed:
        scenario = setup.scenario
        if scenario.persona is not None and self._caller_model is None:
            return Observed(error=NO_CALLER_MODEL)
        token = "".join(secrets.choice("0123456789") for _ in range(16))
        call_id = new_inbound_call_id(None)
        leg_id = new_outbound_call_id()
        self._placed.offer(
            token, PlacedTestCall(call_id, setup.organization_id, setup.assistant, setup.run_id)
        )
        self._tools.watch(call_id, list(scenario.tool_mocks))
        leg = self._placed.leg(leg_id)
        began = time.monotonic()
        observed = Observed(call_id=call_id)
        hearing: _Hearing | None = None
        # What the leg heard is transcribed until all of it is, the call over or not: in the
        # node's pool that work waits behind the calls' own (``caller_speech.py``), and the
        # test call is not kept up for it.
        async with asyncio.TaskGroup() as ears:
            try:
                await self._pbx.originate_test_call(leg_id, token)
                try:
                    async with asyncio.timeout(ANSWER_WAIT_S):
                        await leg.answered.wait()
                except TimeoutError:
                    observed.error = "the test call was not answered"
                    return observed
                began = time.monotonic()
                hearing = _Hearing(self._transcribe, began)
                transcribing = ears.create_task(hearing.transcribe())
                try:
                    async with asyncio.timeout(scenario.max_duration_seconds):
                        observed.error = await self._converse(leg_id, scenario, hearing)
                except TimeoutError:
                    log.info("test call reached its scenario's max_duration_seconds")
                finally:
                    hearing.finish()
            except PbxError as exc:
                observed.error = f"the test call could not be placed ({exc})"
            finally:
                self._placed.withdraw(token)
                if not leg.gone.is_set():
                    with contextlib.suppress(PbxError):
                        await self._pbx.hangup(leg_id)
                with contextlib.suppress(TimeoutError):  # its hang-up reported here, not further
                    async with asyncio.timeout(LEG_GONE_S):
                        await leg.gone.wait()
                self._placed.forget(leg_id)
                observed.tools = self._tools.forget(call_id)
                observed.duration_ms = int((time.monotonic() - began) * 1000)
            if hearing is not None:
                await hearing.all_transcribed(HEARD_WAIT_S)
                transcribing.cancel()  # what is still not transcribed then was not heard
                observed.heard = hearing.in_order()
                observed.latencies_ms = hearing.latencies_ms
        if observed.error is None:
            await self._read_back(setup.organization_id, observed)
        return observed

    async def _converse(self, leg_id: str, scenario: Scenario, hearing: _Hearing) -> str | None:
        """The script played on the leg's media, what it hears listened to meanwhile; why it
        stopped short (the caller model failed), if it did."""
        failure = None
        async with self._media.call_media(leg_id, media_format=ULAW.name) as media:
            async with asyncio.TaskGroup() as group:
                listening = group.create_task(hearing.listen(media))
                try:
                    turns = await self._play(leg_id, scenario, hearing, media)
                    if turns is not None:  # the answer to the caller's last turn
                        await hearing.assistant_done(turns)
                except CallerModelFailed as exc:
                    failure = f"the caller model failed ({exc})"
                finally:
                    listening.cancel()
            await media.hangup()
        return failure

    async def _play(
        self, leg_id: str, scenario: Scenario, hearing: _Hearing, media: CallMedia
    ) -> int | None:
        """The script's steps in order; the assistant's turns heard when the last ended
        (None: the caller hung up)."""
        turns = 0  # the assistant's turns heard before the step
        for step in scenario.steps:
            if isinstance(step, SayStep):
                if step.when == "after-assistant":
                    await hearing.assistant_done(turns)
                elif step.when == "over-assistant":
                    await hearing.assistant_speaking()
                else:
                    await asyncio.sleep(step.after_ms / 1000)
                await self._say(step.text, step.voice, hearing, media)
            elif isinstance(step, PressStep):
                await hearing.assistant_done(turns)
                if self._dtmf is None:
                    raise PbxError("this PBX cannot press keys")
                await self._dtmf.send_dtmf(leg_id, step.keys)
                hearing.caller_turn_ended(time.monotonic())
            elif isinstance(step, SilenceStep):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, HangUpStep):
                return None
            turns = hearing.turns_started
        if scenario.persona is not None:
            return await self._play_persona(scenario.persona, turns, hearing, media)
        return turns

    async def _play_persona(
        self, persona: str, turns: int, hearing: _Hearing, media: CallMedia
    ) -> int | None:
        """The caller model's lines, each once the assistant answered the last; as
        ``_play``."""
        assert self._caller_model is not None
        caller = PersonaCaller(self._caller_model, persona)
        for _ in range(self._max_persona_turns):
            await hearing.assistant_done(turns)
            await hearing.all_transcribed()
            line = await caller.next_line(hearing.in_order())
            if line.text:
                await self._say(line.text, None, hearing, media)
            if line.hang_up:
                return None
            turns = hearing.turns_started
        return turns

    async def _say(self, text: str, voice: str | None, hearing: _Hearing, media: CallMedia) -> None:
        """``text`` said on the leg in ``voice`` (None: the node's offline voice)."""
        pcm, rate = await self._synthesize(text, voice)
        wire = encode(ULAW, resample(decode(SLIN, pcm), rate, ULAW.sample_rate))
        at_ms = hearing.at_ms(time.monotonic())
        await media.play(wire).played()
        hearing.caller_turn_ended(time.monotonic())
        hearing.heard.append(HeardTurn(role="caller", text=text, at_ms=at_ms))

    async def _read_back(self, organization_id: str, observed: Observed) -> None:
        """The engine's record of the test call once it ended (its transcript, end reason,
        analysis), within ``RECORD_WAIT_S``."""
        assert observed.call_id is not None
        call: Call | None = None
        deadline = time.monotonic() + RECORD_WAIT_S
        while time.monotonic() < deadline:
            call = await self._store.get_call(organization_id, observed.call_id)
            if call is not None and call.status.terminal and call.speech_usage is not None:
                break
            await asyncio.sleep(0.25)
        observed.call = call
        if call is None:
            observed.error = "the test call never reached voicedock as an inbound call"
            return
        started = call.started_at or call.created_at
        observed.would_transfer = await would_transfer(self._store, call.id, started)
        for message in await self._store.list_messages(call.id):
            if message.role not in ("assistant", "user"):
                continue
            at = message.started_at or started
            observed.transcript.append(
                HeardTurn(
                    role="assistant" if message.role == "assistant" else "caller",
                    text=message.content,
                    at_ms=max(0, int((at - started).total_seconds() * 1000)),
                )
            )


async def would_transfer(store: Store, call_id: str, started: datetime) -> list[WouldTransfer]:
    """The transfers the test call asked for (its ``control`` events of ``result``
    ``simulated``: ``calls/commands.py``), ``at_ms`` from ``started``."""
    asked = []
    for event in await store.list_events(call_id):
        data = event.data
        if event.type != "control" or data.get("type") != "transfer":
            continue
        if data.get("result") != SIMULATED:
            continue
        at_ms = max(0, int((event.created_at - started).total_seconds() * 1000))
        destination, mode = data.get("destination"), data.get("mode")
        asked.append(WouldTransfer(destination=str(destination), mode=str(mode), at_ms=at_ms))
    return asked


__all__ = [
    "NO_CALLER_MODEL",
    "PbxSimulatedCalls",
    "Synthesizer",
    "Transcriber",
    "would_transfer",
]
