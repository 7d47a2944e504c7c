"""A TCP relay on 127.0.0.1 that delays what it relays: a server on another host, for a bench.

``DelayedRelay(host, port, rtt_ms)`` listens on a free loopback port and forwards each
connection to ``host:port``; every chunk waits half of ``rtt_ms`` before it is passed on, in
each direction, in order. A database reached through it answers a query no sooner than a
round trip later, as one on another host of the same network does (0.2-1 ms), while the
machine's own load stays what it was. It runs on an event loop of its own, in a thread, so
the bench's loop does not delay it further.

    with DelayedRelay("127.0.0.1", 5432, rtt_ms=0.5) as relay:
        dsn = f"postgresql://user@127.0.0.1:{relay.port}/db"
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from types import TracebackType

CHUNK = 65_536


class DelayedRelay:
    """See the module docstring."""

    def __init__(self, host: str, port: int, *, rtt_ms: float) -> None:
        self.host, self.upstream_port = host, port
        self.delay_s = rtt_ms / 2000
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="delayed-relay", daemon=True)

    def __enter__(self) -> DelayedRelay:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the relay did not start")
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        stopped = self._stopped
        if stopped is not None:
            self._loop.call_soon_threadsafe(stopped.set)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopped.wait()
        server.close()
        relays = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            writer.close()
            return
        try:
            async with asyncio.TaskGroup() as both:
                both.create_task(self._pump(reader, up_writer))
                both.create_task(self._pump(up_reader, writer))
        except* (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for closing in (writer, up_writer):
                closing.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Each chunk passed on ``delay_s`` after it came, in order; the end passed on too."""
        due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def write() -> None:
            while True:
                at, chunk = await due.get()
                wait = at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not chunk:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()

        async with asyncio.TaskGroup() as group:
            writing = group.create_task(write())
            while True:
                chunk = await reader.read(CHUNK)
                due.put_nowait((time.monotonic() + self.delay_s, chunk))
                if not chunk:
                    break
            await writing
