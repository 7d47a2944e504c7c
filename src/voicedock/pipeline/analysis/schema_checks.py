"""The node's structured-data checks: a model's answer checked against its organization's JSON
Schema in worker processes, each killed at a deadline.

An analysis plan's ``structured_data_schema`` is the organization's, and so is the model that
answers it. Within the limits of ``domain/tenant_schemas.py`` (no cycles, at most 256
subschemas, no regular expressions) the work still grows with subschemas × values: a few
hundred subschemas over 64 KiB of values is tens of seconds of CPU. A thread cannot be stopped
and holds the interpreter while it works (every call's 20 ms media ticks waited for it), so the
check runs in a process of its own:

* **Workers.** ``SchemaChecks`` (one per node, owned by the call runner) keeps ``workers``
  processes (``python -m voicedock.pipeline.analysis.schema_worker``: a fresh interpreter started
  with exec, never a fork of this threaded process) warm, started with the node (``start``: the
  runner's warm-up) or else on the first check. A worker runs at the lowest CPU priority
  (``nice 19``, from its first instruction: its start and its checks come after every call's
  media and speech) under an address-space limit, with an environment holding none of the
  service's settings; it reads one check per line on stdin and answers one line on stdout.
* **The deadline.** A check is given ``deadline_s`` once a worker has it; past it the worker
  is killed (SIGKILL) and replaced, and the answer's ``structured_data_error`` says that
  checking it took too long. A worker that dies or answers nonsense is replaced the same way.
  ``set_deadline`` changes it while the node runs, for the checks already in a worker too
  (counted from when each started: one already past the new deadline ends now).
* **Fairness.** Checks wait in one queue per organization, served in turn; an organization
  has at most ``workers - 1`` checks running at once (one with one worker). An organization
  one of whose checks reached the deadline is *slow* for ``slow_for_s`` after it: the slow
  organizations together run at most ``workers - 1`` checks at once, so however many
  organizations send hostile answers, the other workers keep serving the others (with the
  default two workers: one for all the slow organizations, one for everyone else). A hostile
  answer costs its own organization at most the deadline per check (and its later checks a
  wait in the slow lane), and another organization at most a wait for a worker that is busy
  with an ordinary check, or the first check of an organization not known to be slow yet.
* **Bounds.** At most ``waiting_per_organization`` checks of one organization and
  ``max_waiting`` in all wait; a check past either bound, or still waiting for a worker after
  ``max_wait_s``, is not made: the analysis is stored without structured data and
  ``structured_data_error`` says why. Nothing here ever delays a call's end: the call's
  record waits at most ``max_wait_s + deadline_s`` for its check.

Before a check is queued, the schema is checked again on the event loop
(``tenant_schemas.schema_refusal``: linear in at most 16 KiB), so a configuration saved before
the limits is refused without costing a worker. Nothing that grows with the answer runs on the
event loop: the worker gets the answer's text and bounds its size and depth itself.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import msgspec

import voicedock
from voicedock.aio import Supervisor
from voicedock.backoff import Backoff
from voicedock.domain import tenant_schemas
from voicedock.domain.json import JsonValue
from voicedock.pipeline.analysis.schema_worker import CheckRequest, WorkerAnswer

log = logging.getLogger("voicedock.pipeline.analysis.schema_checks")

WORKERS = 2
DEADLINE_S = 2.0  # a check's time in a worker
MAX_WAIT_S = 10.0  # a check's wait for a worker
WAITING_PER_ORGANIZATION = 16
MAX_WAITING = 128
SLOW_FOR_S = 60.0  # how long an organization stays slow after a check reached the deadline
START_TIMEOUT_S = 60.0  # a new worker's start (a fresh interpreter and jsonschema)
REPLY_LIMIT = 64 * 1024  # bytes of a worker's answer line (its error text is bounded)
COMMAND = (sys.executable, "-P", "-m", "voicedock.pipeline.analysis.schema_worker")
_decode_answer = msgspec.json.Decoder(WorkerAnswer).decode

TOO_LONG = "checking the structured data took too long"
FAILED = "the structured data could not be checked (its checking process failed)"
BUSY = "the structured data was not checked: too many checks wait on this node"
BUSY_ORGANIZATION = (
    "the structured data was not checked: too many of the organization's checks wait"
)
WAITED = "the structured data was not checked: no worker was free in time"
CLOSING = "the structured data was not checked: the node is shutting down"

# (the plan's schema, the JSON text of the model's answer) -> why its structured_data does not
# match (None: it does).
StructuredDataCheck = Callable[[Mapping[str, JsonValue], str], Awaitable[str | None]]


class SchemaWorkerFailed(Exception):
    """A worker process did not start, died, or answered something else than a check."""


@dataclasses.dataclass(slots=True)
class SchemaCheckStats:
    checked: int = 0  # answered by a worker
    timed_out: int = 0  # past the deadline: the worker killed
    failed: int = 0  # the worker died or answered nonsense: replaced
    refused: int = 0  # not queued: past a bound on waiting checks
    waited_out: int = 0  # given up waiting for a worker
    started: int = 0  # worker processes started


class SchemaWorker:
    """One worker process (``schema_worker.py``), asked one check at a time.

    Started (``subprocess.Popen``) and reaped in a thread: starting a process waits for its
    exec, and that wait is never the event loop's. Its pipes are the loop's (a stream reader
    on its stdout, a write transport on its stdin)."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        reader: asyncio.StreamReader,
        transports: tuple[asyncio.ReadTransport, asyncio.WriteTransport],
    ) -> None:
        self._process = process
        self._reader = reader
        self._out, self._in = transports
        self.pid = process.pid

    @classmethod
    async def start(
        cls,
        command: Sequence[str],
        timeout_s: float,
        starting: set[asyncio.Future[subprocess.Popen[bytes]]],
    ) -> SchemaWorker:
        """A worker that has said it is ready (``SchemaWorkerFailed`` if it did not);
        ``starting`` holds the process while it is being started (its owner waits for it when
        it closes: a process started for nobody is killed as it comes)."""
        process = await _spawn(command, starting)
        assert process.stdin is not None
        assert process.stdout is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=REPLY_LIMIT)
        connected: list[asyncio.BaseTransport] = []
        try:
            out, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), process.stdout
            )
            connected.append(out)
            into, _ = await loop.connect_write_pipe(asyncio.Protocol, process.stdin)
        except BaseException:
            for transport in connected:
                transport.close()
            _discard(process)
            await asyncio.to_thread(process.wait)
            raise
        worker = cls(process, reader, (out, into))
        try:
            async with asyncio.timeout(timeout_s):
                ready = await worker._line()
        except BaseException:
            await worker.kill()
            raise
        if ready.ready is not True:
            await worker.kill()
            raise SchemaWorkerFailed("did not say it was ready")
        return worker

    async def ask(self, request: bytes) -> str | None:
        """The worker's verdict on one check (a line of ``{"schema", "answer"}``)."""
        if self._in.is_closing():
            raise SchemaWorkerFailed("gone")
        self._in.write(request)  # bounded (a schema and an answer): the transport buffers it
        answer = await self._line()
        if isinstance(answer.error, msgspec.UnsetType):
            raise SchemaWorkerFailed("answered something else than a check")
        return answer.error

    async def _line(self) -> WorkerAnswer:
        try:
            line = await self._reader.readline()
        except (ValueError, ConnectionError) as exc:  # a line over the limit
            raise SchemaWorkerFailed(f"unreadable: {type(exc).__name__}") from exc
        if not line:
            raise SchemaWorkerFailed("ended")
        try:
            return _decode_answer(line)
        except msgspec.ValidationError as exc:
            raise SchemaWorkerFailed("answered something else than a check") from exc
        except msgspec.DecodeError as exc:
            raise SchemaWorkerFailed("answered something else than JSON") from exc

    @property
    def alive(self) -> bool:
        """Not known to have ended. Asks the kernel (``poll``: it does not wait), so a worker
        that died while idle is known at once, before its pipe's end reaches the event loop,
        and is replaced rather than handed a check it would fail."""
        return self._process.poll() is None and not self._reader.at_eof()

    async def kill(self) -> None:
        """Stop it now, whatever it is doing, and reap it (idempotent). Killed and its pipes
        closed before the first wait: a kill cancelled meanwhile leaves only the reaping,
        which the process object does when it is collected."""
        self._in.close()
        self._out.close()
        _discard(self._process)
        await asyncio.to_thread(self._process.wait)


async def _spawn(
    command: Sequence[str], starting: set[asyncio.Future[subprocess.Popen[bytes]]]
) -> subprocess.Popen[bytes]:
    """``command`` started in a thread (``SchemaWorkerFailed`` if it cannot be); a process
    whose caller was cancelled while it started is killed and reaped as soon as it is."""
    started = asyncio.ensure_future(
        asyncio.to_thread(
            subprocess.Popen,
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=worker_environment(),
        )
    )
    starting.add(started)
    started.add_done_callback(starting.discard)
    try:
        return await asyncio.shield(started)
    except OSError as exc:
        raise SchemaWorkerFailed(f"not started: {type(exc).__name__}") from exc
    except asyncio.CancelledError:
        started.add_done_callback(_abandoned)
        raise


def _discard(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process`` (if it still runs) and close this side of its pipes; not reaped."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):  # ended meanwhile
            process.kill()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()


def _abandoned(started: asyncio.Future[subprocess.Popen[bytes]]) -> None:
    """A worker started for nobody (its starter was cancelled): killed and reaped at once."""
    if started.cancelled() or started.exception() is not None:
        return
    process = started.result()
    _discard(process)
    process.wait()  # killed: a moment


def worker_environment() -> dict[str, str]:
    """A worker's environment: the interpreter's own variables and the locale, and the
    directory this ``voicedock`` was imported from first on its path (so the worker runs the
    same code); none of the service's settings or keys."""
    kept = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in kept or k.startswith("PYTHON")}
    home = str(Path(voicedock.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
    return env


@dataclasses.dataclass(slots=True, eq=False)
class _Check:
    organization: str
    request: bytes
    started: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    verdict: asyncio.Future[str | None] = dataclasses.field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class SchemaChecks:
    def __init__(
        self,
        workers: int = WORKERS,
        *,
        deadline_s: float = DEADLINE_S,
        max_wait_s: float = MAX_WAIT_S,
        waiting_per_organization: int = WAITING_PER_ORGANIZATION,
        max_waiting: int = MAX_WAITING,
        slow_for_s: float = SLOW_FOR_S,
        command: Sequence[str] = COMMAND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workers = max(1, workers)
        self.deadline_s = deadline_s
        self.max_wait_s = max_wait_s
        self.waiting_per_organization = waiting_per_organization
        self.max_waiting = max_waiting
        self.slow_for_s = slow_for_s
        # At most this many checks at once of one organization, and of the slow ones together.
        self.running_per_organization = max(1, self.workers - 1)
        self._clock = clock
        self._slow_until: dict[str, float] = {}  # organization -> until when it is slow
        self._command = tuple(command)
        self.stats = SchemaCheckStats()
        # Waiting checks per organization, organizations in the order they are served.
        self._waiting: collections.OrderedDict[str, collections.deque[_Check]] = (
            collections.OrderedDict()
        )
        self._waiting_count = 0
        self._running: collections.Counter[str] = collections.Counter()
        self._changed = asyncio.Event()  # a check queued, or a worker's turn ended
        self._workers: dict[int, SchemaWorker] = {}  # slot -> its warm worker
        self._checking: dict[int, str] = {}  # pid -> the organization whose check it runs
        # pid -> the deadline of the check it runs, and when the check started (loop time).
        self._deadlines: dict[int, tuple[asyncio.Timeout, float]] = {}
        self._starting: set[asyncio.Future[subprocess.Popen[bytes]]] = set()
        self._tasks = Supervisor("schema checks", log)
        self._started = False
        self._closed = False

    def for_organization(self, organization_id: str) -> StructuredDataCheck:
        """The check of one organization's answers (what its calls' analysis is given)."""

        async def check(schema: Mapping[str, JsonValue], answer: str) -> str | None:
            return await self.check(organization_id, schema, answer)

        return check

    def worker_pids(self) -> list[int]:
        """The processes of the workers up now."""
        return [worker.pid for worker in self._workers.values() if worker.alive]

    @property
    def waiting(self) -> int:
        """Checks waiting for a worker."""
        return self._waiting_count

    def running(self, organization_id: str) -> int:
        """The organization's checks in a worker now."""
        return self._running[organization_id]

    def running_in(self, organization_id: str) -> list[int]:
        """The processes running the organization's checks now."""
        return [pid for pid, org in self._checking.items() if org == organization_id]

    def set_deadline(self, deadline_s: float) -> None:
        """A check's time in a worker from now on, and for the checks running now: each is
        given ``deadline_s`` from when it started, so one already past it ends now (its worker
        killed, its answer ``TOO_LONG``, as at any deadline)."""
        if not deadline_s > 0:
            raise ValueError(f"a deadline is a positive number of seconds, not {deadline_s!r}")
        self.deadline_s = deadline_s
        for deadline, started in self._deadlines.values():
            if not deadline.expired():  # expired: its check is ending already
                deadline.reschedule(started + deadline_s)

    async def check(
        self, organization_id: str, schema: Mapping[str, JsonValue], answer: str
    ) -> str | None:
        """Why the ``structured_data`` of ``answer`` (the JSON text of the model's answer, an
        object) does not match ``schema``, or why it was not checked (None: it matches). Never
        raises but for cancellation.

        On the event loop only the schema is looked at again (``schema_refusal``: at most
        16 KiB); the answer goes to the worker as the text it is, and everything that grows
        with it (its size and depth, the check itself) happens there."""
        refused = tenant_schemas.schema_refusal(schema)
        if refused is not None:
            return refused
        if self._closed:
            return CLOSING
        if self._waiting_count >= self.max_waiting:
            self.stats.refused += 1
            return BUSY
        queue = self._waiting.get(organization_id)
        if queue is not None and len(queue) >= self.waiting_per_organization:
            self.stats.refused += 1
            return BUSY_ORGANIZATION
        request = msgspec.json.encode(CheckRequest(dict(schema), answer)) + b"\n"
        job = _Check(organization_id, request)
        self._waiting.setdefault(organization_id, collections.deque()).append(job)
        self._waiting_count += 1
        await self.start()
        self._changed.set()
        try:
            async with asyncio.timeout(self.max_wait_s):
                await job.started.wait()
        except TimeoutError:
            if not job.started.is_set():
                self._withdraw(job)
                self.stats.waited_out += 1
                return WAITED
        except asyncio.CancelledError:
            self._withdraw(job)
            raise
        return await job.verdict

    async def start(self) -> None:
        """Start the workers now rather than on the first check (idempotent)."""
        if self._started or self._closed:
            return
        self._started = True
        await self._tasks.start()
        for slot in range(self.workers):
            self._tasks.spawn(self._serve(slot), name=f"schema worker {slot}")

    def _withdraw(self, job: _Check) -> None:
        queue = self._waiting.get(job.organization)
        if queue is not None and job in queue:
            queue.remove(job)
            self._waiting_count -= 1
            if not queue:
                del self._waiting[job.organization]

    def slow(self, organization_id: str) -> bool:
        """Whether one of the organization's checks reached the deadline lately."""
        until = self._slow_until.get(organization_id)
        if until is not None and until <= self._clock():
            del self._slow_until[organization_id]
            return False
        return until is not None

    def _next(self) -> _Check | None:
        """The first waiting check of the first organization in turn that may run one more
        (its own bound; and a slow organization's, the slow ones' bound together)."""
        slow_running = sum(n for org, n in self._running.items() if n and self.slow(org))
        for organization, queue in self._waiting.items():
            if self._running[organization] >= self.running_per_organization:
                continue
            if self.slow(organization) and slow_running >= self.running_per_organization:
                continue
            job = queue.popleft()
            self._waiting_count -= 1
            if queue:
                self._waiting.move_to_end(organization)  # the others go first next time
            else:
                del self._waiting[organization]
            self._running[organization] += 1
            return job
        return None

    async def _serve(self, slot: int) -> None:
        """One worker's turn after turn: keep a process warm, run the next check on it."""
        backoff = Backoff(initial=0.5, cap=30.0)
        try:
            while True:
                worker = self._workers.get(slot)
                if worker is not None and not worker.alive:  # ended while idle: replace it
                    await worker.kill()
                    del self._workers[slot]
                    worker = None
                if worker is None:
                    try:
                        worker = await SchemaWorker.start(
                            self._command, START_TIMEOUT_S, self._starting
                        )
                    except (SchemaWorkerFailed, TimeoutError) as exc:
                        log.warning("schema worker not started: %s", exc)
                        await asyncio.sleep(backoff.next_delay())
                        continue
                    backoff.reset()
                    self.stats.started += 1
                    self._workers[slot] = worker
                job = self._next()
                if job is None:
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                try:
                    if not await self._run(job, worker):
                        del self._workers[slot]
                finally:
                    self._running[job.organization] -= 1
                    self._changed.set()  # the organization may run its next check
        finally:
            worker = self._workers.pop(slot, None)
            if worker is not None:
                await worker.kill()

    async def _run(self, job: _Check, worker: SchemaWorker) -> bool:
        """Run ``job`` on ``worker``; whether the worker is still fit for the next one."""
        job.started.set()
        self._checking[worker.pid] = job.organization
        # CLOSING unless it is answered (cancelled here: the node closes).
        verdict: str | None = CLOSING
        fit = False
        try:
            started = asyncio.get_running_loop().time()
            async with asyncio.timeout(self.deadline_s) as deadline:
                self._deadlines[worker.pid] = (deadline, started)
                try:
                    verdict = await worker.ask(job.request)
                finally:
                    del self._deadlines[worker.pid]
            fit = True
            self.stats.checked += 1
        except TimeoutError:
            verdict = TOO_LONG
            self.stats.timed_out += 1
            self._slow_until[job.organization] = self._clock() + self.slow_for_s
            log.warning(
                "organization %s: a structured data check took more than %.1f s: its worker "
                "is replaced, the organization is slow for %.0f s",
                job.organization,
                self.deadline_s,
                self.slow_for_s,
            )
            await worker.kill()
        except SchemaWorkerFailed as exc:
            verdict = FAILED
            self.stats.failed += 1
            log.warning("schema worker failed (%s): replaced", exc)
            await worker.kill()
        finally:
            self._checking.pop(worker.pid, None)
            if not job.verdict.done():  # its caller may have gone (cancelled)
                job.verdict.set_result(verdict)
        return fit

    async def aclose(self) -> None:
        """Stop the workers; checks still waiting or running answer ``CLOSING``
        (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self._tasks.aclose()  # each worker killed, a check it ran answered CLOSING
        if self._starting:  # processes being started for a slot that is gone: killed
            await asyncio.wait(set(self._starting))
        for queue in self._waiting.values():
            for job in queue:
                if not job.verdict.done():
                    job.verdict.set_result(CLOSING)
                job.started.set()
        self._waiting.clear()
        self._waiting_count = 0
