"""Fillers: what the assistant says while the caller waits for it, so there is no dead air.

One rule for every wait: when what the reply waits for is not there in time, the caller
hears a short phrase in the assistant's voice meanwhile, queued like any speech (the reply
follows it without overlap) and cut by a barge-in like any speech.

* the LLM filler (``llm_filler_delay_s``): the reply's first sentence is late, counted from
  the end of the caller's turn; once per turn, its phrase taken in turn from a short list;
* the tool filler (``tool_filler_delay_s``): a tool the model called is still running;
* the dead-air cover (``dead_air_s``): a reply with no audio at all (a stalled provider).

A filler is voicedock's, not the model's: it is in the call's transcript as an assistant
message of its own (the caller heard it), and never in the model's context, so the model
neither answers it nor learns to open its own replies with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

log = logging.getLogger("voicedock.pipeline")

T = TypeVar("T")


async def late(pending: asyncio.Future[T], delay_s: float) -> bool:
    """Wait up to ``delay_s`` for ``pending`` (which goes on either way): True when it is
    still not done, so the caller is to hear a filler meanwhile."""
    done, _ = await asyncio.wait([pending], timeout=max(delay_s, 0.0))
    return not done


async def dead_air(after_s: float, answered: Callable[[], bool]) -> bool:
    """Dead air on our side: True when, ``after_s`` after the caller's words were heard, the
    reply has still not begun (``answered()`` is false: a stalled provider), so the caller is
    to hear ``dead_air_message`` meanwhile. Both dialogues cover dead air by this rule."""
    await asyncio.sleep(after_s)
    if answered():
        return False
    log.warning("no reply audio after %.1f s: covering the dead air", after_s)
    return True


class FillerPhrases:
    """The phrases of one call's LLM filler, each used in turn (never the same one twice in
    a row when there are several)."""

    def __init__(self, phrases: Sequence[str]) -> None:
        self._phrases = [p for p in phrases if p.strip()]
        self._said = 0

    def __bool__(self) -> bool:
        return bool(self._phrases)

    def next(self) -> str:
        phrase = self._phrases[self._said % len(self._phrases)]
        self._said += 1
        return phrase
