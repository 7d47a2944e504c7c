"""A worker for the supervisor's tests: ``python fake_worker.py DIR BEHAVIOUR --worker k/N
--orders-fd FD``. It writes ``started`` and each order it reads into ``DIR/w<k>.log`` (one line
each, with its pid) and then behaves as ``BEHAVIOUR`` says:

* ``obeys``: exits 0 on ``drain`` or ``stop`` (a node drained with no call, or stopped);
* ``crashes-once``: its first run exits 3 at once (its ``DIR/w<k>.crashed`` marks it), then obeys;
* ``crashes-on-drain``: on ``drain`` its first run exits 3; its next run obeys;
* ``holds-calls``: a drain does not end it (calls in progress); ``stop`` does;
* ``deaf``: reads its orders and never exits (a node stuck stopping);
* ``done``: exits 0 at once (drained through the database before it was asked).

At the end of its orders (its supervisor gone) it writes ``gone`` and exits 0, as a node with no
call drains and exits.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> int:
    directory, behaviour = Path(sys.argv[1]), sys.argv[2]
    k = sys.argv[sys.argv.index("--worker") + 1].split("/")[0]
    fd = int(sys.argv[sys.argv.index("--orders-fd") + 1])
    log = directory / f"w{k}.log"
    crashed = directory / f"w{k}.crashed"

    def note(what: str) -> None:
        with log.open("a") as out:
            out.write(f"{os.getpid()} {what}\n")

    note("started")
    if behaviour == "done":
        return 0
    if behaviour == "crashes-once" and not crashed.exists():
        crashed.touch()
        return 3
    with os.fdopen(fd, "rb", buffering=0) as orders:
        while line := orders.readline():
            order = line.decode().strip()
            note(order)
            if behaviour == "deaf":
                continue
            if order == "drain" and behaviour == "crashes-on-drain" and not crashed.exists():
                crashed.touch()
                return 3
            if order == "stop" or (order == "drain" and behaviour != "holds-calls"):
                return 0
    note("gone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
