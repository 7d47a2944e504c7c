"""One attempt at a write: a store transaction whose in-memory effects are undone when it does
not commit, so that retrying it (the runner's ``WriteBacklog`` while the store is unavailable)
reports exactly what one clean attempt would.

    async with attempt(store) as tx:
        ...                                  # reads and writes in tx
        forget(x)                            # an in-memory effect
        on_failure(lambda: remember(x))      # undone if tx rolls back
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar

from voicedock.store.base import Store, Transaction

# The in-memory effects to undo if the current ``attempt``'s transaction does not commit.
_undo_on_failure: ContextVar[list[Callable[[], object]] | None] = ContextVar(
    "voicedock_engine_undo", default=None
)


def on_failure(undo: Callable[[], object]) -> None:
    """Undo an in-memory effect should the current ``attempt`` not commit (outside one: the
    effect stands)."""
    pending = _undo_on_failure.get()
    if pending is not None:
        pending.append(undo)


@contextlib.asynccontextmanager
async def attempt(store: Store, *, brief: bool = False) -> AsyncIterator[Transaction]:
    """A store transaction whose in-memory effects (``on_failure``) are undone when it does
    not commit (``brief``: ``Store.transaction``'s)."""
    undo: list[Callable[[], object]] = []
    token = _undo_on_failure.set(undo)
    try:
        async with store.transaction(brief=brief) as tx:
            yield tx
    except BaseException:
        for step in reversed(undo):
            step()
        raise
    finally:
        _undo_on_failure.reset(token)
