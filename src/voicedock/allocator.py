"""``settle_allocator``: glibc's malloc told to give the memory a node frees back to the system.

Python hands every object larger than 512 bytes, and the C libraries under it (aiohttp's
parsers, asyncpg, OpenSSL, NumPy) their buffers, to the C library's ``malloc``. glibc's
malloc serves a request of ``M_MMAP_THRESHOLD`` bytes or more (128 KiB) with a mapping of its
own, unmapped when freed, and smaller ones from its heap, which it shrinks when
``M_TRIM_THRESHOLD`` bytes (128 KiB) are free at its top. Both thresholds are *dynamic*: when a
block it had mapped is freed, the mapping threshold rises to that block's size (up to 32 MiB)
and the trim threshold to twice that. A node raised it at start-up already (516 KiB) and to
4 MiB within its first minutes of calls: from then on every buffer up to 4 MiB (a request or
response body, a synthesized reply, a recording) came from the heap and left a hole of its size
when freed, up to 8 MiB of free memory stayed at the heap's top, and the holes, scattered among
longer-lived blocks, were never returned. Over hours of calls the node's resident memory rose
by its heap's free space with what was in use flat (``bench/soak.py --tracemalloc``,
``bench/results/soak-2026-11-26-memory.md``).

Setting the thresholds turns their adjustment off (mallopt(3)), so glibc's own initial values
hold for the life of the process: large buffers are mapped and unmapped, the heap's top is
trimmed; ``malloc_trim(0)`` once at start-up also returns what start-up freed. The price is a
mapping and an unmapping per buffer of 128 KiB or more. Elsewhere than glibc (musl, macOS)
it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from dataclasses import dataclass

log = logging.getLogger("voicedock.allocator")

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024  # glibc's own initial values, kept fixed
TRIM_THRESHOLD = 128 * 1024


def glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (glibc only)
        libc.mallopt  # noqa: B018
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def settle_allocator() -> bool:
    """Fix glibc's thresholds at its initial values and give back what is free now (``voicedock
    serve`` does it first thing, each worker too); False, nothing done, off glibc."""
    libc = glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    fixed = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    fixed = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and fixed
    if not fixed:
        log.warning("malloc thresholds not set (mallopt refused)")
    libc.malloc_trim(0)
    return bool(fixed)


@dataclass(frozen=True, slots=True)
class MallocUsage:
    """glibc's ``mallinfo2()`` in bytes: what its heaps hold (``heap``), in use and free there,
    and the blocks mapped on their own (``mapped``)."""

    heap: int
    in_use: int
    free: int
    mapped: int


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def malloc_usage() -> MallocUsage | None:
    """What glibc's malloc holds now (all its arenas; None off glibc): the measure that tells
    the allocator's growth from the objects' (``bench/memory_growth.py``)."""
    libc = glibc()
    if libc is None:
        return None
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return MallocUsage(
        heap=int(info.arena),
        in_use=int(info.uordblks),
        free=int(info.fordblks),
        mapped=int(info.hblkhd),
    )
