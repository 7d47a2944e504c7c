"""``weak_method``: a part's callback into the object that owns it, which never keeps it alive.

A call's objects form a tree of owners and their parts (the live call owns its dialogue, the
dialogue its transcript, the media session its playout and pacer). A part told what to do by
its owner's method (``TranscriptKeeper(open_since=self._open_since)``) would otherwise hold
its owner, and owner and part would form a cycle: freed by the cyclic garbage collector long
after the call, not by reference counting the moment the call's owner drops them. Given
``weak_method(self._open_since)`` instead, the part calls the owner's method through a weak
reference, so the owner is freed as soon as nothing else holds it, and its parts with it.

The owner outlives every call of its part's callback (it owns the part, and the tasks that
run it); a call after the owner is gone is a bug, raised as ``ReferenceError``.
"""

from __future__ import annotations

import types
import weakref
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def weak_method(method: Callable[P, R]) -> Callable[P, R]:
    """``method`` (bound to its owner) called through a weak reference to the owner."""
    if not isinstance(method, types.MethodType):
        raise TypeError(f"weak_method needs a bound method, not {type(method).__name__}")
    owner = weakref.ref(method.__self__)
    function = method.__func__
    name = method.__qualname__

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        target = owner()
        if target is None:
            raise ReferenceError(f"{name}: its object is gone")
        result: R = function(target, *args, **kwargs)
        return result

    return call
