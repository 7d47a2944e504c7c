"""A schema worker: ``python -m voicedock.pipeline.analysis.schema_worker``, started and killed by
the node's ``SchemaChecks`` (``schema_checks.py``).

It lowers its own CPU priority to the least first (``nice 19``: the service's calls and their
media ticks go first on every core, even while a replacement starts), limits its address space
to ``MEMORY_LIMIT``, loads ``jsonschema`` and says ``{"ready": true}``. Then, for each
line of stdin (``{"schema": ..., "answer": "<the JSON text of the model's answer>"}``), it
answers one line on stdout, ``{"error": null}`` or ``{"error": "why"}``: why the answer's
``structured_data`` does not match the schema (``tenant_schemas.validation_error``: its size
and depth bounded, then the schema applied). It ends when stdin closes. It writes nothing
else (its stderr is discarded: nothing of an answer reaches a log).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sys

import msgspec

MEMORY_LIMIT = 1024 * 1024 * 1024  # bytes of address space
LOWEST_PRIORITY = 19


class CheckRequest(msgspec.Struct):
    """A line of stdin: the schema and the JSON text of the model's answer."""

    schema: dict[str, object]  # a JSON Schema: its shape is open
    answer: str


class WorkerAnswer(msgspec.Struct, omit_defaults=True):
    """A line of stdout: ``{"ready": true}`` once, then ``{"error": ...}`` per check (None: it
    matches); a field not sent is ``UNSET``."""

    ready: bool | msgspec.UnsetType = msgspec.UNSET
    error: str | msgspec.UnsetType | None = msgspec.UNSET


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service stops it (Ctrl-C reaches both)
    with contextlib.suppress(OSError):
        os.nice(LOWEST_PRIORITY)
    with contextlib.suppress(OSError, ValueError):  # a platform without the limit
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    from voicedock.domain.tenant_schemas import validation_error

    validation_error({"type": "array", "uniqueItems": True}, [])  # jsonschema loaded, warm

    _answer(WorkerAnswer(ready=True))
    for line in sys.stdin.buffer:
        try:
            request = msgspec.json.decode(line, type=CheckRequest)
            answer = json.loads(request.answer)
            data = answer.get("structured_data") if isinstance(answer, dict) else None
            error = validation_error(request.schema, data)
        except MemoryError:
            error = "the structured data is too large to check"
        except Exception:  # noqa: BLE001 - any failure is the check's answer, never a crash
            error = "the structured data could not be checked"
        _answer(WorkerAnswer(error=error))


def _answer(message: WorkerAnswer) -> None:
    sys.stdout.buffer.write(msgspec.json.encode(message) + b"\n")
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
