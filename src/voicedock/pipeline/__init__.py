"""Speech pipeline, one package per role (each a layer: a package imports only from those below):

    dialogue/        the turn engine, the speech-to-speech dialogue, the dialogues made of them,
                     and the parts they are built from
    fallback_plans/  an assistant's fallback plans: which provider serves next when one fails
    speaking/        what speaks: the reply's sentences, synthesis, fillers, the output sink
    hearing/         what hears: VAD, echo gate, endpointing, turn detection, recognition, keys
    analysis/        what a model reads from a call after it, and its checks
    pools/           what the node's calls share: the worker pool, the synthesis cache, the
                     providers' health
    providers/       the speech and language providers behind the ``Stt``, ``Llm``, ``Tts`` seams
    tools.py         the tools a model may call (their types, the executor's seam)
    frames.py, audio.py, text.py   the frames every part passes, PCM and text helpers

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
