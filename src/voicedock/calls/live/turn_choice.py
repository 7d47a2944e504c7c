"""Which way a call decides that the caller finished: the assistant's ``turn_detection``, left
out the operator's default, and silence where the node has no turn model
(``pipeline/hearing/turn_model.py``). Loads no speech pipeline: admission control asks it of every
new call."""

from __future__ import annotations

from voicedock.domain.assistant_config import TURN_MODEL, TURN_SILENCE, AssistantConfig, set_or


def turn_detection(assistant_config: AssistantConfig, default: str) -> str:
    """How the assistant's pipeline calls decide the caller finished: its ``turn_detection``,
    left out the operator's ``default`` (``[speech.endpointing] turn_detection``); silence
    where this node has no turn model installed."""
    from voicedock.pipeline.hearing.turn_model import installed  # numpy: only when a call asks

    asked = set_or(assistant_config.turn_detection, default)
    return asked if asked != TURN_MODEL or installed() else TURN_SILENCE


__all__ = ["turn_detection"]
