"""What every part of the engine stands on: the store, the settings, the clock, the node it
runs on and the call's timeline (``timeline.py``), built once by ``CallEngine`` and given to
each part, which keeps the four it reads as ``_store``, ``_now``, ``_node_id`` and
``_timeline`` (``EnginePart``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from voicedock.calls.engine.timeline import Timeline
from voicedock.config import Settings
from voicedock.store.base import Store


@dataclass(frozen=True, slots=True)
class Ground:
    store: Store
    settings: Settings
    clock: Callable[[], datetime]
    node_id: str
    timeline: Timeline


class EnginePart:
    """A part of the engine (``CallEngine``'s: placement, scheduled calls, inbound calls...),
    on the engine's ``Ground``."""

    def __init__(self, ground: Ground) -> None:
        self._store = ground.store
        self._now = ground.clock
        self._node_id = ground.node_id
        self._timeline = ground.timeline
