"""A voicedock node as a process of its own, so that a test can start several and ``kill -9`` one.

``python -m nodes.node_process <config.toml>`` (``tests`` on the path) runs what
``voicedock serve --config`` runs (``create_app`` on ``[server]`` host and port) with fake speech
providers registered under the name ``node-fake`` (``[speech] stt``/``tts``/``llm``): a scripted
STT, the echo LLM and ``ToneTts``; and ``node-hearing`` (``[speech] stt``): an STT that hears the
lab parties' sentence in every utterance, so that talking parties get answers (``tests/soak``).
``node_process`` starts it from a test and always stops it. With ``[node] workers`` above 1 the
process is the supervisor of that many workers, each this module again (``voicedock serve
--workers N``'s supervisor and workers, the fakes registered in each).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fakes.world import ACME
from freeswitch_lab.lab_service import ToneTts
from pipeline.fakes import FakeLlm, FakeStt
from process_helpers import logged_process
from voicedock import logs
from voicedock.allocator import malloc_usage, settle_allocator
from voicedock.api import serve
from voicedock.api.api_keys import issue_api_key
from voicedock.api.app import create_app
from voicedock.collector import garbage_collector
from voicedock.config import load_settings
from voicedock.config.workers import WorkerPlace, worker_settings
from voicedock.pipeline.providers.registry import llm_registry, stt_registry, tts_registry
from voicedock.store import open_store
from voicedock.workers.supervisor import supervise, worker_command

SPEECH = "node-fake"
HEARING = "node-hearing"
HEARD = "I would like to book an appointment on Monday."

_TESTS = Path(__file__).resolve().parents[1]


async def acme_api_key(database_url: str, source: Path | None = None) -> str:
    """An API key of ACME (the organization of ``fakes.world``'s numbers), issued in the
    nodes' database, for a test to call their REST API; by the code of the source tree
    ``source`` where the nodes run another version (its schema may lack this tree's columns),
    as its operator would."""
    if source is not None:
        program = (
            "import asyncio, sys\n"
            "from nodes.node_process import acme_api_key\n"
            "print(asyncio.run(acme_api_key(sys.argv[1])))\n"
        )
        issued = await asyncio.create_subprocess_exec(
            sys.executable, "-c", program, database_url,
            env=process_env(source), stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await issued.communicate()
        assert issued.returncode == 0, f"issuing the key with {source} failed"
        return out.decode().strip().splitlines()[-1]
    store = await open_store(database_url)
    try:
        key, _ = await issue_api_key(store, ACME)
    finally:
        await store.aclose()
    return key


class HearingStt(FakeStt):
    """Hears the lab parties' sentence (``HEARD``) in every utterance."""

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        await super().transcribe(pcm, sample_rate)
        self.calls.clear()  # a long call transcribes hundreds of utterances
        return HEARD


def process_env(source: Path | None = None) -> dict[str, str]:
    """The environment of a node process: of this tree, or of the source tree ``source`` (its
    ``tests``, ``src`` and ``lab/src`` only: nothing of this tree's code)."""
    if source is None:
        path = [str(_TESTS), os.environ.get("PYTHONPATH", "")]
    else:
        path = [str(source / "tests"), str(source / "src"), str(source / "lab" / "src")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


@contextmanager
def node_process(
    config: Path, log: Path, source: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The node, its output in ``log``; stopped (INT, then KILL) on exit. ``source``: the
    node of that source tree (another version of voicedock: ``nodes/previous_version.py``)
    rather than this one's."""
    args = [sys.executable, "-m", "nodes.node_process", str(config)]
    with logged_process(args, log, env=process_env(source)) as process:
        yield process


# A directory: the node traces its allocations (``tracemalloc``) and writes a snapshot there
# every ``TRACE_EVERY`` seconds, ``snapshot-<seconds>.bin`` (``bench/soak.py --tracemalloc``).
TRACE_DIR = "VOICEDOCK_TRACEMALLOC"
TRACE_EVERY = "VOICEDOCK_TRACEMALLOC_EVERY"
TRACE_FRAMES = 12
TRACE_FRAMES_VARIABLE = "VOICEDOCK_TRACEMALLOC_FRAMES"  # 0: no tracing, the census alone
# Class names (``module.QualName``, comma-separated): what holds the first one alive of each.
TRACE_REFERRERS = "VOICEDOCK_TRACE_REFERRERS"
# Set: a full collection each time, and what it freed by type (``garbage-<seconds>.txt``).
TRACE_GARBAGE = "VOICEDOCK_TRACE_GARBAGE"


def trace_allocations(directory: Path, every_s: float) -> None:
    """Snapshots of the node's allocations, from a thread of their own until the process
    ends (a snapshot stops the node for the time it takes: a tool for finding growth)."""
    frames = int(os.environ.get(TRACE_FRAMES_VARIABLE, str(TRACE_FRAMES)))
    if frames:  # 0: the census of live objects alone (tracing slows a loaded node down)
        tracemalloc.start(frames)
    began = time.monotonic()

    def snapshots() -> None:
        while True:
            time.sleep(every_s)
            at = time.monotonic() - began
            if frames:
                tracemalloc.take_snapshot().dump(str(directory / f"snapshot-{at:07.0f}.bin"))
            census = heap() + own_objects() + containers()
            (directory / f"objects-{at:07.0f}.txt").write_text(census)
            if wanted := os.environ.get(TRACE_REFERRERS):
                (directory / f"referrers-{at:07.0f}.txt").write_text(held_by(wanted.split(",")))
            if os.environ.get(TRACE_GARBAGE):
                (directory / f"garbage-{at:07.0f}.txt").write_text(garbage())

    threading.Thread(target=snapshots, name="tracemalloc", daemon=True).start()


def heap() -> str:
    """Where the process's memory is: its RSS, Python's object allocator (its blocks, and its
    arenas with what is used and free in them), what tracemalloc traces (when on), glibc's
    malloc (in use and free in its arenas, mmapped), the collector's counts, and its objects by
    type (the 15 most numerous). RSS rising with the blocks is Python objects kept; RSS rising
    with them flat is the allocators' (free memory held in arenas, fragmentation)."""
    lines = [f"rss_kib {_rss_kib()}", f"python_blocks {sys.getallocatedblocks()}"]
    lines += [f"{name} {value}" for name, value in _pymalloc().items()]
    if tracemalloc.is_tracing():
        lines.append(f"traced_kib {tracemalloc.get_traced_memory()[0] // 1024}")
    if (malloc := malloc_usage()) is not None:
        lines += [
            f"malloc_heap_kib {malloc.heap // 1024}",
            f"malloc_used_kib {malloc.in_use // 1024}",
        ]
        lines += [
            f"malloc_free_kib {malloc.free // 1024}",
            f"malloc_mapped_kib {malloc.mapped // 1024}",
        ]
    lines.append(f"gc_full_collections {gc.get_stats()[2]['collections']}")
    kinds = Counter(type(o).__qualname__ for o in gc.get_objects())
    lines += [f"gc {n:8d} {name}" for name, n in kinds.most_common(15)]
    return "\n".join(lines) + "\n"


def _pymalloc() -> dict[str, int]:
    """Python's object allocator in KiB (``sys._debugmallocstats``, read into a file)."""
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    stats = ctypes.pythonapi._PyObject_DebugMallocStats
    stats.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile("r") as out:
        handle = libc.fopen(out.name.encode(), b"w")
        stats(handle)
        libc.fclose(handle)
        text = out.read()
    found: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition("=")
        number = value.strip().replace(",", "")
        if not number.isdigit():
            continue
        if name.startswith("# arenas allocated current"):
            found["pymalloc_arenas_kib"] = int(number) * 1024
        elif name.startswith("# bytes in allocated blocks"):
            found["pymalloc_used_kib"] = int(number) // 1024
        elif name.startswith("# bytes in available blocks") or "unused pools" in name:
            found["pymalloc_free_kib"] = found.get("pymalloc_free_kib", 0) + int(number) // 1024
    return found


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def own_objects() -> str:
    """How many objects of each of voicedock's classes are alive, most first."""
    counts: Counter[str] = Counter()
    for o in gc.get_objects():
        module = type(o).__module__  # a descriptor, not a string, on some built-in types
        if isinstance(module, str) and module.startswith("voicedock"):
            counts[f"{module}.{type(o).__qualname__}"] += 1
    return "".join(f"{n:8d} {name}\n" for name, n in counts.most_common())


CONTAINERS = (dict, set, list, deque, frozenset, tuple)


def containers(top: int = 40) -> str:
    """The largest containers held by voicedock's objects and modules, summed per owner's
    class and attribute (``len @ module.Class.attribute``): what grows with distinct keys
    (a dict of strings the collector does not track, never pruned) shows here by name."""
    sizes: Counter[str] = Counter()
    owners: list[tuple[str, object]] = [
        (name, module) for name, module in list(sys.modules.items()) if name.startswith("voicedock")
    ]
    owners += [(_name(o), o) for o in gc.get_objects() if _name(o).startswith("voicedock")]
    for owner, o in owners:
        for attribute, value in _attributes(o):
            if isinstance(value, CONTAINERS) and not attribute.startswith("__"):
                sizes[f"{owner}.{attribute}"] += len(value)
    return "".join(f"{n:8d} @ {name}\n" for name, n in sizes.most_common(top))


def _attributes(o: object) -> list[tuple[str, object]]:
    found = list(getattr(o, "__dict__", {}).items())
    for klass in type(o).__mro__:
        for slot in getattr(klass, "__slots__", ()):
            if isinstance(slot, str) and hasattr(o, slot):
                found.append((slot, getattr(o, slot)))
    return found


def garbage(top: int = 40) -> str:
    """A full collection now, keeping what it finds (``gc.DEBUG_SAVEALL``): the objects only
    reference cycles held, by type (and for functions, coroutines and frames, by code), the
    ones that wait in the collector's generations between its full collections. It changes
    the node it measures: a full collection a minute."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = Counter(_garbage_kind(o) for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    lines = [f"garbage {found.total()}"]
    lines += [f"{n:8d} {kind}" for kind, n in found.most_common(top)]
    return "\n".join(lines) + "\n"


def _garbage_kind(o: object) -> str:
    code = getattr(o, "cr_code", None) or getattr(o, "gi_code", None)
    code = code or getattr(o, "f_code", None) or getattr(o, "__code__", None)
    if code is not None:
        return f"{type(o).__name__} {code.co_qualname} ({_short_path(code.co_filename)})"
    return _name(o) or type(o).__qualname__


def _short_path(filename: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def held_by(names: list[str], depth: int = 8) -> str:
    """For the oldest live object of each named class (the last the collector lists): the
    chain of what refers to it, up to ``depth`` steps (at each, the first referrer that is not
    this tool's own list or a frame)."""
    lines: list[str] = []
    everything = gc.get_objects()
    for name in names:
        found = [o for o in everything if _name(o) == name]
        lines.append(f"{name}: {len(found)} alive")
        seen = {id(everything), id(lines), id(found)}
        current: object = found[-1] if found else None
        for level in range(depth):
            if current is None:
                break
            seen.add(id(current))
            referrers = gc.get_referrers(current)
            seen.add(id(referrers))
            holders = [
                r
                for r in referrers
                if id(r) not in seen and not isinstance(r, type(sys._getframe()))
            ]
            seen.add(id(holders))
            lines += [f"  {'  ' * level}<- {_describe(r)}" for r in holders[:4]]
            current = holders[0] if holders else None
        del found
    del everything
    return "\n".join(lines) + "\n"


def _name(o: object) -> str:
    module = type(o).__module__
    return f"{module}.{type(o).__qualname__}" if isinstance(module, str) else ""


def _describe(o: object) -> str:
    if isinstance(o, dict):
        return f"dict of {len(o)} keys {list(o)[:6]!r:.200}"
    if isinstance(o, list | tuple | set | frozenset):
        return f"{type(o).__name__} of {len(o)}"
    code = getattr(o, "cr_code", None) or getattr(o, "__code__", None)
    if code is not None:
        return f"{type(o).__name__} {code.co_qualname} ({code.co_filename}:{code.co_firstlineno})"
    return _name(o) or type(o).__qualname__


def main(config: str, *worker: str) -> int:
    """The node of ``config``; with ``[node] workers`` above 1, the supervisor of that many
    workers, each this module again with ``--worker k/N --orders-fd FD`` (``worker``), as
    ``voicedock serve --workers N`` runs them."""
    settle_allocator()  # as `voicedock serve` does
    if trace := os.environ.get(TRACE_DIR):
        trace_allocations(Path(trace), float(os.environ.get(TRACE_EVERY, "60")))
    handler = logging.StreamHandler()  # as ``voicedock serve`` logs
    logs.configure(handler)
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    stt_registry.register(SPEECH, lambda _c, _e: FakeStt())
    stt_registry.register(HEARING, lambda _c, _e: HearingStt())
    llm_registry.register(SPEECH, lambda _c, _e: FakeLlm())
    tts_registry.register(SPEECH, lambda _c, _e: ToneTts(8000))
    settings = load_settings(config)
    role = None
    if worker:  # --worker k/N --orders-fd FD
        role = serve.Worker(WorkerPlace.parse(settings, worker[1]), int(worker[3]))
        settings = worker_settings(settings, role.place)
    elif settings.node.workers > 1:
        command = worker_command(["-m", "nodes.node_process", config], settings.node.workers)
        return supervise(settings, settings.node.workers, command)
    app = create_app(settings)
    server = settings.server
    app.cleanup_ctx.append(garbage_collector(server.gc_thresholds, server.gc_full_every_seconds))
    serve.run(app, host=settings.server.host, port=settings.server.port, worker=role)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
