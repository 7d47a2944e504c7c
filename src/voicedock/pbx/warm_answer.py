"""The agent's spoken answer to a warm transfer's briefing, as each adapter hears it: what the
answer means is the ``WarmDialogue``'s (``pbx/base.py``, from ``calls/transfers``); the
adapter gives it the agent leg's audio and logs what came of it in its own log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable

from voicedock.domain.audio import AudioFormat
from voicedock.domain.ids import mask_call_id
from voicedock.pbx.base import Decision, WarmDialogue


async def heard_decision(
    dialogue: WarmDialogue,
    frames: AsyncIterable[bytes],
    media_format: AudioFormat,
    call_id: str,
    log: logging.Logger,
) -> Decision | None:
    """The decision the agent said ("yes" / "no") in ``frames``; ``None``: the frames ended
    first, or the recognizer broke (logged: a digit still decides)."""
    try:
        answer = await dialogue.listen(frames, media_format)
    except Exception as exc:  # noqa: BLE001 - a broken recognizer leaves DTMF to decide
        log.warning("warm transfer: voice decision unavailable: %s", type(exc).__name__)
        return None
    if answer is not None:
        log.info("call %s: the agent answered by voice (%s)", mask_call_id(call_id), answer)
    return answer
