"""``ConversationConfig``: the dialogue settings of one call (prompt, timing, fallbacks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from voicedock.domain.assistant_config import DEFAULT_LLM_FILLER_MESSAGES as DEFAULT_PHRASES
from voicedock.domain.flows import Flow
from voicedock.domain.redaction import Redactor
from voicedock.pipeline.dialogue.words_decide import BargeInConfig
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.hearing.echo import EchoGateConfig
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.hearing.keypad import KeypadPlan
from voicedock.pipeline.hearing.streaming_recognition import StreamingConfig
from voicedock.pipeline.hearing.vad import VadConfig
from voicedock.pipeline.tools import ToolSpec


@dataclass(slots=True, frozen=True)
class ConversationConfig:
    sample_rate: int = 8000
    system_prompt: str = "You are a helpful phone assistant. Keep answers short."
    first_message: str | None = None
    # The call is refused: the first message is the last, then the call ends.
    hang_up_after_first_message: bool = False
    context: str | None = None
    # Turns the model sees before this call's own (the assistant's seeded user/assistant
    # messages); never spoken and not part of the transcript.
    history: tuple[ChatMessage, ...] = ()
    # The call so far, carried over from the dialogue this one goes on from (a squad's member
    # the call was handed over to): the model sees it after ``history``.
    carried: tuple[ChatMessage, ...] = ()
    vad: VadConfig | None = None
    # The caller's audio denoised before the VAD and the STT hear it (pipeline/hearing/noise.py).
    noise_suppression: bool = False
    endpointing: EndpointingConfig = field(default_factory=EndpointingConfig)
    pre_roll_ms: int = 200
    echo: EchoGateConfig = field(default_factory=EchoGateConfig)  # own voice heard back
    # Whether the caller's words decide a barge-in (backchannels and noises do not stop the
    # assistant: pipeline/dialogue/words_decide.py).
    barge_in: BargeInConfig = field(default_factory=BargeInConfig)
    stt_timeout_s: float = 15.0
    # How an `IncrementalStt` transcribes the caller's turn while it is spoken.
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    llm_first_token_timeout_s: float = 10.0
    # A model of a fallback plan with a next model gives no first token this long: the next
    # model is asked too, and the first to answer serves (the caller waits at most this, then
    # the next model's own first words). Midway, a model the next entry can take over from
    # fails a reply when it is silent this long (the next entry goes on from what was said).
    llm_takeover_s: float = 1.2
    tts_timeout_s: float = 10.0
    fallback_message: str = "Sorry, I am having technical difficulties. Please call again later."
    fallback_timeout_s: float = 8.0
    silence_timeout_message: str | None = "It seems you are no longer there. Goodbye."
    # Said after endpointing.silence_prompt_ms of the caller's silence (when that is set).
    silence_prompt_message: str = "Are you still there?"
    # Dead air on our side: a reply with no audio this long after the caller's words were
    # heard (a stalled LLM or TTS) is covered by dead_air_message; None: not covered.
    dead_air_s: float | None = None
    dead_air_message: str = "One moment, please."
    # A slow LLM: when the reply's first sentence has not come ``llm_filler_delay_s`` after
    # the caller's turn ended, the caller hears the next of ``llm_filler_messages`` once
    # (pipeline/speaking/filler.py); None: no LLM filler.
    llm_filler_delay_s: float | None = None
    llm_filler_messages: tuple[str, ...] = DEFAULT_PHRASES
    end_call_grace_s: float = 30.0
    # Tools the model may call (with a ``ToolExecutor`` given to the conversation). While one
    # runs longer than ``tool_filler_delay_s`` the caller hears ``tool_filler_message`` once.
    tools: tuple[ToolSpec, ...] = ()
    tool_filler_message: str | None = "One moment, please."
    tool_filler_delay_s: float = 1.0
    max_tool_rounds: int = 4  # model replies with tool calls in one turn, before it must speak
    # The caller's keypad: when the digits of one entry become a user turn
    # (pipeline/hearing/keypad.py).
    keypad: KeypadPlan = field(default_factory=KeypadPlan)
    # The assistant's redaction plan (domain/redaction): every transcript message is redacted
    # before it is kept or handed on; ``model_sees_redacted``: the caller's words the model is
    # given are too (else as said). None: nothing is redacted.
    redactor: Redactor | None = None
    model_sees_redacted: bool = True
    # The squad's member this dialogue is (a call placed with a squad): each of its transcript
    # messages names it. None: the call's one assistant.
    member: str | None = None
    # The assistant's flow (domain/flows.py): the model runs in its nodes, one at a time
    # (flow_run.py). None: no flow.
    flow: Flow | None = None

    def redact(self, text: str) -> str:
        """``text`` as the call keeps and sends it."""
        return self.redactor.redact(text) if self.redactor is not None else text

    def for_model(self, text: str) -> str:
        """The caller's ``text`` as the model is given it."""
        return self.redact(text) if self.model_sees_redacted else text

    @property
    def instructions(self) -> str:
        """What the model is told first: the system prompt, with the call's context."""
        if self.context:
            return f"{self.system_prompt}\n\nContext for this call:\n{self.context}"
        return self.system_prompt
