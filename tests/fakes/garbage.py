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
    gc.collect()
    # What earlier tests left and something still holds (a finished loop's executor, a saved
    # traceback) may be let go during the block: it is not the block's, so held until its end.
    earlier = [thing for thing in gc.get_objects() if _voicedock(type(thing))]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield found
        gc.set_debug(gc.DEBUG_SAVEALL)
        before = len(gc.garbage)
        gc.collect()
        for thing in gc.garbage[before:]:
            kind = type(thing)
            if _voicedock(kind):
                found.voicedock[f"{kind.__module__}.{kind.__qualname__}"] += 1
        del gc.garbage[before:]
    finally:
        gc.set_debug(0)
        del earlier
        if was_enabled:
            gc.enable()


def _voicedock(kind: type) -> bool:
    module = kind.__module__  # not always a string (a metatype's descriptor)
    return isinstance(module, str) and module.startswith("voicedock.")
