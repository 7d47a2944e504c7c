"""Log context and log-safe error descriptions.

The call a task works for is bound once per task (``with call_context(call_id): ...``) through a
``ContextVar``; tasks started inside inherit it. ``CallIdFilter`` puts the bound id, masked with
``mask_call_id`` (an inbound id carries the caller's number), on every record as ``call_id``
("-" when none), and ``CallIdFormatter`` appends ``[call <id>]`` to lines that do not name it
already. ``configure(handler)`` installs both (``voicedock serve`` does it on the root handler); the
formatter masks every phone number a message holds, whatever its form (``mask_numbers``).
With several PBX servers, the server a task works for is bound the same way (``pbx_context``)
and named as `` [pbx <name>]``.

``describe(exc)`` names an exception for a log line, opening exception groups down to their
leaves: ``ExceptionGroup[PbxError: channel not found, OSError: ...]``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

from voicedock.domain.ids import mask_call_id
from voicedock.errors import VoicedockError
from voicedock.validation import mask_numbers

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_NO_CALL = "-"
_DESCRIBE_MAX = 200  # characters of one leaf's message

_call_id: ContextVar[str | None] = ContextVar("voicedock_call_id", default=None)
_pbx_server: ContextVar[str | None] = ContextVar("voicedock_pbx_server", default=None)


def current_call_id() -> str | None:
    """The call id bound to this task (unmasked), if any."""
    return _call_id.get()


def call_context(call_id: str | None) -> contextlib.AbstractContextManager[None]:
    """Bind ``call_id`` to the current task (and tasks it starts) for the ``with`` block."""
    return _bound(_call_id, call_id)


def pbx_context(name: str | None) -> contextlib.AbstractContextManager[None]:
    """Bind the PBX server ``name`` to the current task (and tasks it starts) for the block."""
    return _bound(_pbx_server, name)


@contextlib.contextmanager
def _bound(var: ContextVar[str | None], value: str | None) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def bind_call_id(call_id: str | None) -> None:
    """Bind ``call_id`` for the rest of the current task (its first line, e.g. a call's task)."""
    _call_id.set(call_id)


class CallIdFilter(logging.Filter):
    """Sets ``record.call_id``: the bound call id, masked, or ``"-"``. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        call_id = _call_id.get()
        if not hasattr(record, "call_id"):
            record.call_id = mask_call_id(call_id) if call_id else _NO_CALL
        if not hasattr(record, "pbx_server"):
            record.pbx_server = _pbx_server.get() or ""
        return True


class CallIdFormatter(logging.Formatter):
    """Appends `` [call <id>]`` when a call is bound and the message does not name it, and
    `` [pbx <name>]`` when a PBX server is bound. Every phone number a message holds, in any
    form (``validation.mask_numbers``), is masked: the last word on what a line shows."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = mask_numbers(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        call_id = getattr(record, "call_id", _NO_CALL)
        server = getattr(record, "pbx_server", "")
        tags = ""
        if call_id != _NO_CALL and call_id not in record.getMessage():
            tags += f" [call {call_id}]"
        if server:
            tags += f" [pbx {server}]"
        if not tags:
            return text
        first, newline, rest = text.partition("\n")  # before a traceback, if any
        return f"{first}{tags}{newline}{rest}"


def configure(handler: logging.Handler, fmt: str = LOG_FORMAT) -> None:
    """Make ``handler`` name the bound call id on each line."""
    handler.addFilter(CallIdFilter())
    handler.setFormatter(CallIdFormatter(fmt))


def describe(exc: BaseException) -> str:
    """An exception for a log line: its type and message, an exception group's leaves inside
    ``Group[...]``. Only voicedock's and built-in exceptions show their message (a library's
    may quote a URL with a key), with every phone number in it masked."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = ", ".join(describe(inner) for inner in exc.exceptions)
        return f"{type(exc).__name__}[{leaves}]"
    shown = isinstance(exc, VoicedockError) or type(exc).__module__ == "builtins"
    message = str(exc).strip().replace("\n", " ") if shown else ""
    message = mask_numbers(message)
    if len(message) > _DESCRIBE_MAX:
        message = message[: _DESCRIBE_MAX - 1] + "…"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
