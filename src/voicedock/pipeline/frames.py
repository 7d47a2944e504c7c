"""Typed frames that flow through the speech pipeline.

Every event the turn engine reacts to is one of these small immutable dataclasses, so a
processor's input and output are visible in its signature and tests can build them by hand.
Frames carry no behaviour; processors decide what to do with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Role = Literal["system", "user", "assistant", "tool"]
# Transcript roles: who spoke, and (``tool_calls``, ``tool``) what the assistant did meanwhile;
# ``supervisor``: what a supervisor listening to the call typed to the assistant (a whisper).
TranscriptRole = Literal["system", "user", "assistant", "tool_calls", "tool", "supervisor"]
# Where an inject-context comes from: an API client's context, or a supervisor's whisper.
ContextSource = Literal["api", "supervisor"]
SUPERVISOR: Final = "supervisor"


SUPERVISOR_PREFIX = (
    "A supervisor listening to this call says (the caller does not hear this; follow it in "
    "your next words):"
)


def supervisor_note(text: str) -> str:
    """How the model is given a supervisor's whisper (the caller never hears it)."""
    return f"{SUPERVISOR_PREFIX} {text}"


@dataclass(slots=True, frozen=True)
class Frame:
    """Base class of every pipeline frame."""


@dataclass(slots=True, frozen=True)
class UserSpeechStarted(Frame):
    """The endpointer decided the caller started a turn (after the minimum speech time)."""

    at_ms: int


@dataclass(slots=True, frozen=True)
class UserSpeechStopped(Frame):
    """The endpointer decided the caller's turn ended (after the silence window)."""

    started_at_ms: int
    ended_at_ms: int
    decided_at_ms: int


@dataclass(slots=True, frozen=True)
class Interruption(Frame):
    """The caller spoke over the assistant long enough to barge in."""

    at_ms: int


@dataclass(slots=True, frozen=True)
class Transcript(Frame):
    """Recognised caller text; `final` is False for interim results of streaming engines."""

    text: str
    final: bool = True


@dataclass(slots=True, frozen=True)
class Dtmf(Frame):
    digit: str


@dataclass(slots=True, frozen=True)
class SilencePrompt(Frame):
    """The caller has been silent for ``silence_prompt_ms``: ask whether they are still there."""

    at_ms: int


@dataclass(slots=True, frozen=True)
class EndCall(Frame):
    """Ask the engine to end the call; `final_message` is spoken to the end first."""

    reason: str
    final_message: str | None = None


@dataclass(slots=True, frozen=True)
class Say(Frame):
    """Speak this exact text as the assistant (control command `say`)."""

    text: str


@dataclass(slots=True, frozen=True)
class InjectContext(Frame):
    """Add information to the assistant's context; optionally make it respond now. From a
    supervisor it is also a transcript entry of its own (role ``supervisor``). The control
    command ``inject-context`` as the dialogue receives it (``calls/control.py``); ``source``
    ``supervisor``: a supervisor's whisper (the console's)."""

    content: str
    trigger_response: bool = False
    source: ContextSource = "api"


@dataclass(slots=True, frozen=True)
class ToolCall:
    """A function the model asked to call: ``arguments`` is the JSON text it produced."""

    id: str
    name: str
    arguments: str


@dataclass(slots=True, frozen=True)
class ChatMessage:
    """One message of the language-model context.

    An assistant message may carry ``tool_calls`` (its content then often empty); a ``tool``
    message is the result of the call named by ``tool_call_id``.
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""

    @property
    def meaningful(self) -> bool:
        """Worth sending to the model: it says something or asks for a tool."""
        return bool(self.content) or bool(self.tool_calls) or self.role == "tool"


@dataclass(frozen=True, slots=True)
class HeardAudio:
    """The caller's audio a message was transcribed from: 16-bit mono PCM; when (UNIX time)
    the frame that ended the turn came (``counted_from``), and its first sample, counted back
    from then in the caller's audio (``started_at``): a moment of it is so many seconds of
    audio before that frame, which is how the recording finds it
    (``media/heard_timeline.py``)."""

    pcm: bytes
    sample_rate: int
    started_at: float
    counted_from: float


@dataclass(slots=True)
class TranscriptEntry:
    """One spoken message of the call, as stored and returned by the API.

    Times are UNIX epoch seconds. An interrupted assistant message holds only the part the
    caller actually heard.
    """

    role: TranscriptRole
    content: str
    started_at: float
    ended_at: float
    interrupted: bool = False
    # The provider that transcribed (a caller's message) or spoke it (the assistant's), as the
    # call's usage counts it (None: the engine's own; never sent with the message).
    provider: str | None = None
    # The redaction plan replaced some of what was said (its audio is silenced in the
    # recording; never sent with the message).
    redacted: bool = False
    # A redacted caller message's audio, kept until the call's end to find when the words it
    # hides were said (``calls/live/redacted_audio.py``); dropped from any other message.
    audio: HeardAudio | None = None
    # The squad's member who spoke it or heard it (a call placed with a squad); None: the
    # call's one assistant.
    member: str | None = None
    # The language it was said in, as the call followed the caller (a BCP 47 primary tag;
    # None: the assistant lists no languages).
    language: str | None = None
    # The node of the assistant's flow the call was in as the message ended (None: no flow).
    node: str | None = None


@dataclass(slots=True)
class TurnLatency:
    """Where the time of one assistant turn went, in milliseconds.

    `endpointing_ms` is the silence waited before deciding the caller was done; the other
    fields are measured from that decision. `filler_ms` is when the first frame of a filler
    said before the reply's own audio was sent (None: the caller heard no filler first).
    `stt_provider`, `llm_provider` and `tts_provider` name the provider that served each
    engine in the turn (a label: provider, host, model; None: not known or not used).
    `early_cut_offs` counts the times, since the turn before, the caller was judged finished
    and went on speaking within a second (``pipeline/hearing/cut_off.py``): the turn they went
    on in counts it (the turn whose reply the resumption stopped may leave no record; on the
    turn engine, words not yet answered are merged into this turn). `retrieval_ms` is the
    search of the assistant's knowledge bases for the turn's words, before the model was asked
    (``knowledge.retrieval`` ``every_turn``; None: no search).
    """

    endpointing_ms: float = 0.0
    stt_final_ms: float | None = None
    llm_first_token_ms: float | None = None
    tts_first_audio_ms: float | None = None
    first_frame_sent_ms: float | None = None
    filler_ms: float | None = None
    stt_provider: str | None = None
    llm_provider: str | None = None
    tts_provider: str | None = None
    early_cut_offs: int = 0
    retrieval_ms: float | None = None
