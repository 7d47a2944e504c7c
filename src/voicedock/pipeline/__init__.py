"""Speech pipeline: VAD, endpointing and barge-in, the turn engine, and speech providers.

The names below are loaded on first use: importing a submodule (``pipeline.providers.registry``
to check an assistant's provider names) must not load the VAD and the turn engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicedock.pipeline.analysis.post_call import AnalysisResult, analyze
    from voicedock.pipeline.dialogue.turn_engine import ConversationConfig, TurnEngine
    from voicedock.pipeline.hearing.endpointing import Endpointer, EndpointingConfig
    from voicedock.pipeline.hearing.vad import VadConfig, VoiceActivityDetector
    from voicedock.pipeline.speaking.output import OutputSink, PlaybackHandle

_HOMES = {
    "AnalysisResult": "analysis.post_call",
    "analyze": "analysis.post_call",
    "TurnEngine": "dialogue.turn_engine",
    "ConversationConfig": "dialogue.conversation_config",
    "Endpointer": "hearing.endpointing",
    "EndpointingConfig": "hearing.endpointing",
    "OutputSink": "speaking.output",
    "PlaybackHandle": "speaking.output",
    "VadConfig": "hearing.vad",
    "VoiceActivityDetector": "hearing.vad",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "AnalysisResult",
    "ConversationConfig",
    "Endpointer",
    "EndpointingConfig",
    "OutputSink",
    "PlaybackHandle",
    "TurnEngine",
    "VadConfig",
    "VoiceActivityDetector",
    "analyze",
]
