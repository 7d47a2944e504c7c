"""``POST /calls/{id}/control`` commands (read by their models, ``api/models/calls.py``), and
the live-conversation seam.

The audio pipeline implements ``LiveCall`` and registers it with the engine for each call it
runs. A command for a call another node serves is carried out by that node
(``calls/nodes/command_relay``). Without a registered conversation (no pipeline attached yet)
``say`` and ``inject-context`` are still accepted: they are stored as call events, which is all that
can be done with them, and the API says "Command sent". ``end-call`` and ``transfer`` go to the
PBX directly in that case, so they always take effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from voicedock.calls import json_readers
from voicedock.pbx.base import TransferTarget
from voicedock.pipeline.frames import ContextSource
from voicedock.pipeline.frames import InjectContext as InjectContext  # a command, as heard

TRANSFER_MODES = ("blind", "warm")
# What the assistant says when the PBX reports that a transfer failed (the caller is back).
TRANSFER_FAILED_MESSAGE = (
    "I'm sorry, the transfer did not go through. I'm still here: how else can I help?"
)


@dataclass(frozen=True, slots=True)
class Say:
    content: str


@dataclass(frozen=True, slots=True)
class EndCall:
    message: str | None = None  # spoken before hanging up when a conversation is attached


@dataclass(frozen=True, slots=True)
class Transfer:
    destination: str  # E.164 or a configured internal target; checked by the engine
    announcement: str | None = None
    mode: str = "blind"
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class Handoff:
    """The call goes on with another member of its squad: the one named, or the one whose
    saved assistant is ``assistant_id`` (``docs/squads.md``)."""

    member: str | None = None
    assistant_id: str | None = None


ControlCommand = InjectContext | Say | EndCall | Transfer | Handoff
TRANSFER_TARGET_MAX = 80


def transfer_target(destination: str) -> str:
    """A transfer's destination as sent: one line of at most 80 characters (which target it
    names, E.164 or internal, the engine reads against the policy)."""
    return json_readers.check_text(
        destination, "destination", max_len=TRANSFER_TARGET_MAX, line=True
    )


class LiveCall(Protocol):
    """A running conversation on a call, implemented by the audio pipeline."""

    async def say(self, content: str) -> None: ...

    async def inject_context(
        self, content: str, trigger_response: bool, source: ContextSource = "api"
    ) -> None:
        """Context for the model; a ``supervisor``'s is also stored in the transcript."""
        ...

    async def end_call(self, message: str | None) -> None:
        """Speak ``message`` (if any), then hang up through the PBX."""
        ...

    async def transfer(
        self, target: TransferTarget, announcement: str | None, summary: str | None
    ) -> None:
        """Prepare the PBX transfer that follows: speak ``announcement`` (if any) to its end,
        and for a warm transfer put the agent's briefing in ``target.extra[BRIEFING_KEY]``.
        Raise ``NotImplementedError`` when the conversation cannot (the PBX transfers alone)."""
        ...

    async def hand_over(self, member: str) -> None:
        """The call goes on with its squad's ``member`` once what is being said was said."""
        ...


class LiveCalls:
    """The conversations running on this node, by call id."""

    def __init__(self) -> None:
        self._by_call: dict[str, LiveCall] = {}

    def attach(self, call_id: str, live: LiveCall) -> None:
        self._by_call[call_id] = live

    def detach(self, call_id: str) -> None:
        self._by_call.pop(call_id, None)

    def get(self, call_id: str) -> LiveCall | None:
        return self._by_call.get(call_id)
