"""The sizes of the containers a node's long-lived objects keep, to find one that grows per call.

``container_sizes(roots)`` walks from ``roots`` (a ``Service`` and what its web app keeps:
``app_roots``) through the attributes of voicedock's objects (instance ``__dict__`` and
``__slots__``, the object behind a bound method, what a closure holds) and gives the ``len()`` of
every dict, set, list, deque, weak container and queue it meets, by the attribute path that
reached it first (``service.pbx._calls._by_channel``). It never enters a container's elements:
those are the calls' own objects (a served call, its legs), which come and go with their calls.
Also measured: the module-level containers of voicedock's modules (``module:voicedock.x._y``)
and the objects they name, and the locals of every running task's coroutines (``task:...``),
where a long-lived loop may keep a ``seen`` set of its own.

A container that grows by an entry for every call and never shrinks is what a node serving
calls for days runs out of memory with, whether the garbage collector tracks it or not (a dict
whose keys and values are only strings is untracked: a census of ``gc.get_objects()`` misses
it). ``grown(before, after)`` compares two walks.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import types
import weakref
from collections.abc import Mapping
from typing import Any

_SIZED = (
    dict,
    set,
    list,
    collections.deque,
    weakref.WeakValueDictionary,
    weakref.WeakKeyDictionary,
    weakref.WeakSet,
)
_DEPTH = 16  # attribute hops from a root, at most


def app_roots(service: object, app: Mapping[object, object]) -> dict[str, object]:
    """The roots of a served node: its ``Service`` and what its web app keeps (the rate
    limiter, the event streams' state...)."""
    return {"service": service, **{f"app[{key}]": value for key, value in app.items()}}


def container_sizes(roots: Mapping[str, object]) -> dict[str, int]:
    """``len()`` of every container reachable from ``roots``, the modules and the running
    tasks, by path."""
    sizes: dict[str, int] = {}
    seen: set[int] = set()

    def measured(path: str, value: object) -> bool:
        if isinstance(value, _SIZED):
            sizes.setdefault(path, len(value))
            return True
        if isinstance(value, asyncio.Queue):
            # A queue with a bound cannot grow per call: its size is a moment's (a pool's idle
            # connections while one is in use), not a leak.
            sizes.setdefault(path, 0 if value.maxsize > 0 else value.qsize())
            return True
        return False

    def walk(path: str, obj: object, depth: int) -> None:
        if id(obj) in seen or depth > _DEPTH:
            return
        seen.add(id(obj))
        for name, value in _attributes(obj):
            where = f"{path}.{name}"
            if not measured(where, value) and _walked(value):
                walk(where, value, depth + 1)

    for name, root in roots.items():
        if not measured(name, root):
            walk(name, root, 0)
    for module_name, module in list(sys.modules.items()):
        if module is None or not module_name.startswith("voicedock"):
            continue
        for name, value in list(vars(module).items()):
            where = f"module:{module_name}.{name}"
            if not name.startswith("__") and not measured(where, value) and _walked(value):
                walk(where, value, 0)
    for task in asyncio.all_tasks():
        coro: Any = task.get_coro()
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
            if frame is None:
                break
            where = f"task:{task.get_name()}:{frame.f_code.co_qualname}"
            for local, value in frame.f_locals.items():
                # A local is long-lived when it is the same object at both walks: its id is in
                # its path, and in the paths of what it holds (one made for each event, and the
                # headers it carries, is never compared).
                held = f"{where}.{local}#{id(value)}"
                if not measured(held, value) and _walked(value):
                    walk(held, value, 0)
            coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return sizes


def grown(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """The containers larger ``after`` than ``before``: (size before, size after). One new
    since counts from 0, but a task's (a task started since is not a long-lived one, nor is an
    object a task holds that was not there before); a path may name its node first
    (``node0:task:...``)."""
    return {
        path: (before.get(path, 0), size)
        for path, size in sorted(after.items())
        if size > before.get(path, 0) and (path in before or not _of_a_task(path))
    }


def _of_a_task(path: str) -> bool:
    return path.startswith("task:") or ":task:" in path.split(".", 1)[0]


def _walked(value: object) -> bool:
    """An object of voicedock's, or a method or function (what it holds is walked)."""
    if isinstance(value, type | types.ModuleType):
        return False
    if isinstance(value, types.MethodType | types.FunctionType):
        return True
    module = type(value).__module__
    return isinstance(module, str) and module.startswith("voicedock")


def _attributes(obj: object) -> list[tuple[str, object]]:
    if isinstance(obj, types.MethodType):
        return [("__self__", obj.__self__)]
    if isinstance(obj, types.FunctionType):
        found: list[tuple[str, object]] = []
        for name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or (), strict=True):
            try:
                found.append((f"<{obj.__qualname__}:{name}>", cell.cell_contents))
            except ValueError:  # an empty cell
                continue
        return found
    found = list(vars(obj).items()) if isinstance(getattr(obj, "__dict__", None), dict) else []
    for klass in type(obj).__mro__:
        for name in getattr(klass, "__slots__", ()):
            if name in ("__dict__", "__weakref__"):
                continue
            try:
                found.append((name, object.__getattribute__(obj, name)))
            except AttributeError:  # a slot never set
                continue
    return found
