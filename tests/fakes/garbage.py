"""What a block of a test leaves to Python's cyclic garbage collector.

``cyclic_garbage()`` runs the block with the collector off, then collects once, saving what it
found (``gc.DEBUG_SAVEALL``): objects that became unreachable in the block but that reference
counting could not free, being in reference cycles. ``voicedock`` counts those of voicedock's
classes: a call's objects freed when it ends leave none.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class CyclicGarbage:
    voicedock: Counter[str] = field(default_factory=Counter)
    """voicedock's objects only the collector freed, by class (``module.Class``)."""


@contextmanager
def cyclic_garbage() -> Iterator[CyclicGarbage]:
    found = CyclicGarbage()
    gc.collect()  # what earlier tests left is not this block's
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield found
        gc.set_debug(gc.DEBUG_SAVEALL)
        before = len(gc.garbage)
        gc.collect()
        for thing in gc.garbage[before:]:
            kind = type(thing)
            if kind.__module__.startswith("voicedock."):
                found.voicedock[f"{kind.__module__}.{kind.__qualname__}"] += 1
        del gc.garbage[before:]
    finally:
        gc.set_debug(0)
        if was_enabled:
            gc.enable()
