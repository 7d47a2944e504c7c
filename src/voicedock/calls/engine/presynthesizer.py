"""What the engine asks of the node's speech while a call rings: its first message prepared
ahead of the answer (``Presynthesizer``, implemented by the runner's ``Presynthesis``,
``calls/runner/presynthesis.py``), told of each call whose assistant is known before it is
answered: an outbound call as it is originated, an inbound call once its assistant is chosen.
"""

from __future__ import annotations

import logging
from typing import Protocol

from voicedock.domain.ids import mask_call_id
from voicedock.domain.records import Call

log = logging.getLogger("voicedock.calls")


class Presynthesizer(Protocol):
    """Prepares a call's speech while it is not answered yet."""

    def prepare(self, call: Call, ring_seconds: float) -> None:
        """``call`` (its assistant known) is ringing, for at most ``ring_seconds``."""
        ...

    def drop(self, call_id: str) -> None:
        """The call will not be answered: what was prepared for it is not needed."""
        ...


def prepare_ahead(presynthesizer: Presynthesizer | None, call: Call, ring_seconds: float) -> None:
    """Tell ``presynthesizer`` (if the node has one) of ``call``; its failure is logged, never
    the call's."""
    if presynthesizer is not None:
        try:
            presynthesizer.prepare(call, ring_seconds)
        except Exception:
            log.exception("call %s: first message not prepared", mask_call_id(call.id))
