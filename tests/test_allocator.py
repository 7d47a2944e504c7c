"""glibc's malloc keeps its initial thresholds in a node (voicedock/allocator.py).

The node's resident memory rose for hours after warm-up with what malloc had in use flat: one
large buffer freed at start-up had raised glibc's dynamic mapping threshold to its size, so
every later buffer up to that size came from the heap and left a hole there when freed.
Each check runs in a process of its own: the thresholds are the process's."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from voicedock import allocator, cli

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(allocator.glibc() is None, reason="glibc's malloc only"),
]

# A 4 MiB block mapped and freed (as start-up does), then a 1 MiB one: mapped on its own
# (mallinfo2's hblkhd grows by it) or served from the heap. Prints "mapped" or "heap".
_PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from voicedock.allocator import glibc, malloc_usage, settle_allocator

    libc = glibc()
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    if sys.argv[1] == "settled":
        settle_allocator()
    libc.free(libc.malloc(4 << 20))
    before = malloc_usage().mapped
    block = libc.malloc(1 << 20)
    print("mapped" if malloc_usage().mapped - before >= 1 << 20 else "heap")
    libc.free(block)
    """
)


def _where_a_megabyte_goes(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_glibc_left_alone_serves_buffers_below_a_freed_large_one_from_its_heap() -> None:
    # What the node met: the dynamic threshold rose to the freed block's size.
    assert _where_a_megabyte_goes("as-is") == "heap"


def test_a_settled_allocator_maps_large_buffers_after_a_large_one_was_freed() -> None:
    assert _where_a_megabyte_goes("settled") == "mapped"


def test_serve_settles_the_allocator_before_it_builds_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicedock.api import app as app_module
    from voicedock.api import serve

    order: list[str] = []
    monkeypatch.setattr(allocator, "settle_allocator", lambda: order.append("allocator"))
    real_create_app = app_module.create_app

    def create_app(settings: object) -> object:
        order.append("service")
        return real_create_app(settings)  # type: ignore[arg-type]

    monkeypatch.setattr(app_module, "create_app", create_app)

    def run(app: object, *, loop: asyncio.AbstractEventLoop, **_: object) -> None:
        order.append("run")
        loop.close()

    monkeypatch.setattr(serve, "run", run)
    config = tmp_path / "voicedock.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n[pbx]\nkind = "none"\n',
        encoding="utf-8",
    )
    assert cli.main(["serve", "--config", str(config)]) == 0
    assert order == ["allocator", "service", "run"]
