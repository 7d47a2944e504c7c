"""Speech pipeline: VAD, endpointing and barge-in, the turn engine, and speech providers."""

from voicedock.pipeline.analysis import AnalysisResult, analyze
from voicedock.pipeline.conversation import Conversation, ConversationConfig
from voicedock.pipeline.endpointing import Endpointer, EndpointingConfig
from voicedock.pipeline.output import OutputSink, PlaybackHandle
from voicedock.pipeline.vad import VadConfig, VoiceActivityDetector

__all__ = [
    "AnalysisResult",
    "Conversation",
    "ConversationConfig",
    "Endpointer",
    "EndpointingConfig",
    "OutputSink",
    "PlaybackHandle",
    "VadConfig",
    "VoiceActivityDetector",
    "analyze",
]
