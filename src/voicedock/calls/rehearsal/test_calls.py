"""What a scenario's test call needs and gives back: the call between a simulated caller and
the assistant under test, placed through the PBX (``SimulatedCalls``, implemented where the PBX
and the node's speech are: ``calls/rehearsal/simulated_caller.py`` ``PbxSimulatedCalls``), and
what it left (``Observed``): what the caller leg heard, the answers' latency measured there,
the tools the model called, the engine's record of the call (with the transfers it asked for:
a test call never leaves the PBX, so they were recorded, not dialled)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from voicedock.calls.assistants.resolve import ResolvedAssistant
from voicedock.domain.json import JsonValue
from voicedock.domain.records import Call
from voicedock.domain.rehearsal import HeardTurn, Scenario, WouldTransfer


@dataclass(frozen=True, slots=True)
class CallSetup:
    """One scenario's test call: its run, organization, the assistant it calls."""

    run_id: str
    organization_id: str
    scenario: Scenario
    assistant: ResolvedAssistant


@dataclass(frozen=True, slots=True)
class ToolUse:
    """A tool the model called during a test call, with its arguments."""

    name: str
    arguments: dict[str, JsonValue]


@dataclass(slots=True)
class Observed:
    """What a scenario's test call left."""

    call_id: str | None = None
    heard: list[HeardTurn] = field(default_factory=list)  # the caller leg's side, in order
    latencies_ms: list[int] = field(default_factory=list)  # voice to voice, at the caller leg
    tools: list[ToolUse] = field(default_factory=list)
    call: Call | None = None  # the engine's record once the call ended
    transcript: list[HeardTurn] = field(default_factory=list)  # the engine's transcript
    # The transfers the call asked for: recorded by the engine, never dialled.
    would_transfer: list[WouldTransfer] = field(default_factory=list)
    duration_ms: int = 0
    error: str | None = None  # the call could not be made or ended badly


class SimulatedCalls(Protocol):
    """Places a scenario's test call and plays its simulated caller to the end."""

    async def call(self, setup: CallSetup) -> Observed: ...


__all__ = ["CallSetup", "Observed", "SimulatedCalls", "ToolUse"]
