"""A program a test runs as a process of its own (so that it can be killed like a real one)."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def logged_process(
    args: Sequence[str], log: Path, *, env: Mapping[str, str], cwd: Path | str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``args`` as a subprocess, its output in ``log``; always stopped (SIGINT: a voicedock
    node stops at once, where SIGTERM would let its calls finish first; then SIGKILL)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(args), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


# Where the tests' servers listen: below the kernel's ephemeral range (ip_local_port_range,
# 32768-60999 by default). A port the kernel hands out to bind(0) is one it also hands to
# outgoing connections: between the pick and the server's bind, any client's socket may take
# it, and the server fails with "address already in use".
_LISTEN_PORTS = range(20000, 32000)


def free_port() -> int:
    """A TCP port on 127.0.0.1 for a test's server, outside the ephemeral range."""
    return free_ports(1)


def free_ports(count: int) -> int:
    """A TCP port on 127.0.0.1 whose next ``count - 1`` are free too (``voicedock serve
    --workers N``'s API port and each worker's own, ``port + k``), outside the ephemeral
    range."""
    for _ in range(200):
        first = random.randrange(_LISTEN_PORTS.start, _LISTEN_PORTS.stop - count)
        held: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                held.append(sock := socket.socket())
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return first
    raise OSError(f"no run of {count} free ports")


def alive(pid: int) -> bool:
    """Process ``pid`` runs (a zombie, whose parent has not reaped it, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
