"""The caller's turn answered, on the turn engine: what the caller said and pressed into the
transcript and the model's context, then the model's reply spoken.

A turn is the caller's words (``hearing.py``: transcribed while spoken or after), a keypad
entry (``keypad_input.py``), or both: an entry still open when the spoken turn ends, or words
whose reply a key stopped. The two become one turn for the model, in the order they started
(so are the transcript and its ``MessageAdded`` events), and one reply answers both; an entry
is recorded even when its turn is stopped before the words are heard. A turn whose words turn
out empty (and that has no entry) holds nothing and gets no reply. With the caller's
language followed (``following_language.py``) their words pick the voice first.

The reply is spoken by the floor (``barge_in.py``) sentence by sentence as the model streams
it (``reply.py``); when neither it nor a filler has started ``dead_air_s`` after the caller's
words were heard, ``dead_air_message`` covers the wait. Each spoken turn leaves its latency
record (``latencies``): endpointing, the STT's final words, the model's first token, the
serving engines, and the early cut-offs told since the last one (``cut_offs.py``); once
complete it is told as ``TurnTimed`` (the traces' turn spans).
"""

from __future__ import annotations

import time
from functools import partial

from voicedock.pipeline.dialogue.assistant_audio import ms_since
from voicedock.pipeline.dialogue.barge_in import Floor
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.cut_offs import CutOffsSince
from voicedock.pipeline.dialogue.ending import CallEnd
from voicedock.pipeline.dialogue.events import CallEvents, TurnCommitted, TurnTimed
from voicedock.pipeline.dialogue.following_language import FollowingLanguage
from voicedock.pipeline.dialogue.hearing import CallerTurn, Hearing
from voicedock.pipeline.dialogue.history import ModelHistory
from voicedock.pipeline.dialogue.keypad_input import KeypadInput
from voicedock.pipeline.dialogue.reply import Replies, Wait
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.fallback_plans.serving import Serving
from voicedock.pipeline.frames import ChatMessage, TranscriptEntry, TurnLatency
from voicedock.pipeline.hearing.keypad import KeypadEntry
from voicedock.pipeline.hearing.listener import UserUtterance
from voicedock.pipeline.speaking.filler import dead_air
from voicedock.pipeline.speaking.output import Speech
from voicedock.pipeline.tools import TurnKnowledge

__all__ = ["Answering"]


class Answering:
    """Answers the caller's turns of one turn engine's call; ``latencies``: one record per
    spoken turn answered."""

    def __init__(
        self,
        config: ConversationConfig,
        *,
        hearing: Hearing,
        keypad: KeypadInput,
        floor: Floor,
        replies: Replies,
        serving: Serving,
        transcript: TranscriptKeeper,
        history: ModelHistory,
        language: FollowingLanguage | None,
        end: CallEnd,
        events: CallEvents,
        knowledge: TurnKnowledge | None = None,
    ) -> None:
        """What a turn is made of (``hearing``, ``keypad``), what says the reply (``floor``,
        ``replies``; ``serving``: who serves each engine), where the turn goes
        (``transcript``, ``history``), the call's ``end`` and its ``events``; ``knowledge``
        searches the assistant's knowledge bases with each spoken turn's words."""
        self._config, self._hearing, self._keypad = config, hearing, keypad
        self._floor, self._replies, self._serving = floor, replies, serving
        self._transcript, self._history = transcript, history
        self._language, self._end, self._events = language, end, events
        self._knowledge = knowledge
        # An early end of turn (``cut_offs.py``) is counted by the next turn's record: the
        # reply the caller's resumption stopped leaves none.
        self._cut_offs = CutOffsSince(events)
        self.latencies: list[TurnLatency] = []

    def spoken_turn(
        self,
        utterance: UserUtterance,
        decided: float,
        decided_wall: float,
        keys: KeypadEntry | None = None,
        user: CallerTurn | None = None,
    ) -> None:
        """The caller's spoken turn ended (decided at ``decided``, perf_counter, and
        ``decided_wall``; with ``keys``: the keypad entry it ended; ``user``: its
        transcription, when it was started already)."""
        stopped = utterance.stopped
        latency = TurnLatency(
            endpointing_ms=float(stopped.decided_at_ms - stopped.ended_at_ms),
            early_cut_offs=self._cut_offs.take(),
        )
        if user is None:
            user = self._hearing.turn(utterance, decided_wall)
        self._respond_with_keys(user, latency, decided, keys)

    def keypad_turn(self, keys: KeypadEntry) -> None:
        """A complete entry: a user turn. Words of the caller whose reply a key stopped (not
        heard yet) are part of it."""
        self._respond_with_keys(self._hearing.pending(), None, time.perf_counter(), keys)

    def context_turn(self) -> None:
        """Context was injected that asks for a reply: answered as a turn without words."""
        self._floor.spawn(self._respond(None, None, 0.0))

    def add_keypad(self, keys: KeypadEntry) -> None:
        """The entry ``keys`` into the transcript and the model's context."""
        self._transcript.add(self._keypad.entry(keys))
        self._history.add(ChatMessage("user", keys.text))

    def _respond_with_keys(
        self,
        user: CallerTurn | None,
        latency: TurnLatency | None,
        t0: float,
        keys: KeypadEntry | None,
    ) -> None:
        """Answer ``user``'s words and the entry ``keys`` as one turn, in the order they
        started: an entry that started first is in the history now, a later one once the
        words are."""
        then = keys
        # An entry that started before the caller's pending words goes first.
        if keys is not None and (
            user is None or self._keypad.wall(keys.started_at) <= self._hearing.started()
        ):
            self.add_keypad(keys)
            then = None
        keyed = keys is not None
        task = self._floor.spawn(self._respond(user, latency, t0, then=then, keyed=keyed))
        if task is None and then is not None:  # closing: the entry is still recorded
            self.add_keypad(then)

    async def _respond(
        self,
        user: CallerTurn | None,
        latency: TurnLatency | None,
        t0: float,
        *,
        then: KeypadEntry | None = None,
        keyed: bool = False,
    ) -> None:
        """Answer the caller's turn: ``user``'s words (when spoken), then the keypad entry
        ``then`` (kept even when the turn is stopped before the words are heard); ``keyed``:
        a keypad entry is part of this turn, so it is answered even without words."""
        spoken = False
        if user is not None:
            try:
                # A barge-in or the call's end stops this turn, not its transcription.
                heard = await user.words.heard()
            except BaseException:
                if then is not None:
                    self.add_keypad(then)
                raise
            if isinstance(heard, Exception):
                if then is not None:
                    self.add_keypad(then)
                raise heard
            text = heard
            if latency is not None:
                latency.stt_final_ms = ms_since(t0)
                latency.stt_provider = self._serving.label("stt")
            heard_audio = self._hearing.heard()
            started = self._hearing.used()
            if not text and then is None and not keyed:
                self._transcript.report()  # the turn closed without words: it holds nothing
                return
            if spoken := bool(text):
                if heard_audio is not None and self._language is not None:
                    await self._language.heard(heard_audio, len(text.split()))
                ended = self._hearing.at(user.ended_at_ms)
                entry = TranscriptEntry("user", text, started, ended, audio=heard_audio)
                self._transcript.add(entry)
                self._history.add(ChatMessage("user", text))
        if then is not None:
            self.add_keypad(then)
        if user is not None or keyed:
            self._events.emit(TurnCommitted(spoken, keyed))
        if spoken and self._knowledge is not None:
            await self._retrieve(self._knowledge, text, latency)

        def first_token() -> None:
            if latency is not None:
                latency.llm_first_token_ms = ms_since(t0)

        slot = self._history.reserve()
        reply = Speech(slot=slot)
        delay = self._config.llm_filler_delay_s
        wait = Wait(t0 + delay if user is not None and delay is not None else None)
        cover = None
        if user is not None and self._config.dead_air_s is not None:
            cover = self._floor.spawn(self._cover_dead_air(reply, wait, latency, t0))
        try:
            make = partial(self._replies.sentences, first_token, wait)
            await self._floor.speak(make, slot, latency, t0, speech=reply)
        finally:
            if cover is not None and reply.started_at is None:
                cover.cancel()  # never spoke (stopped, failed): nothing to cover any more
        if latency is not None:
            latency.llm_provider = self._serving.label("llm")
            latency.tts_provider = self._serving.label("tts")
            self.latencies.append(latency)
            self._timed(latency, t0, text if spoken else "")

    def _timed(self, latency: TurnLatency, t0: float, heard: str) -> None:
        """Tell the turn's complete record, its decision (``t0``, perf_counter) on the wall
        clock, and the endpoints that served it."""
        serving = self._serving
        decided_at = time.time() - (time.perf_counter() - t0)
        stt, llm, tts = serving.endpoint("stt"), serving.endpoint("llm"), serving.endpoint("tts")
        self._events.emit(TurnTimed(latency, decided_at, stt, llm, tts, heard))

    async def _retrieve(
        self, knowledge: TurnKnowledge, words: str, latency: TurnLatency | None
    ) -> None:
        """The knowledge bases searched with the turn's words as the model reads them: what
        is found goes into this turn's requests, its time on the turn's record."""
        t0 = time.perf_counter()
        found = await knowledge.for_turn(self._config.for_model(words))
        self._history.retrieved = found or ""
        if latency is not None:
            latency.retrieval_ms = ms_since(t0)

    async def _cover_dead_air(
        self, reply: Speech, wait: Wait, latency: TurnLatency | None, t0: float
    ) -> None:
        """Dead air on our side: when neither ``reply`` nor a filler has started
        ``dead_air_s`` after the caller's words were heard (a stalled LLM or TTS), say
        ``dead_air_message`` meanwhile, as a filler."""

        def answered() -> bool:
            started = reply.started_at is not None or wait.covered
            return started or self._end.ending or not self._floor.floor_free.is_set()

        assert self._config.dead_air_s is not None
        if not await dead_air(self._config.dead_air_s, answered):
            return
        wait.covered = True
        filler = await self._floor.say_filler(self._config.dead_air_message, latency, t0)
        await self._floor.settle_played(filler)
