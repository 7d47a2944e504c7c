"""Start a throw-away PostgreSQL server for tests (Debian's binaries, loopback only).

    dsn, stop = start_postgres()        # raises PostgresUnavailable if it cannot
    try:
        db_dsn = await fresh_database(dsn)   # an empty database per test
        ...
        drop_fresh_databases()               # after the test (conftest's autouse fixture)
    finally:
        stop()

The server runs as the ``postgres`` OS user when we are root (PostgreSQL refuses root), listens
on 127.0.0.1 at a free port with trust auth (nothing else can reach it), keeps its socket and
data in a private temp dir and runs with fsync off: it is disposable.
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import asyncpg

from process_helpers import free_port
from teardown_parts import timed

SUPERUSER = "postgres"
_database_numbers = itertools.count(1)
# The databases ``fresh_database`` made since the last ``drop_fresh_databases``: (server, name).
_fresh: list[tuple[str, str]] = []
_templates: dict[str, str] = {}  # server DSN → its migrated template (``_migrated_template``)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started here; the message says why."""


def find_bin_dir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresUnavailable("PostgreSQL binaries not found (apt-get install -y postgresql)")


def start_postgres(base_dir: Path | None = None) -> tuple[str, Callable[[], None]]:
    """Start a server; return the DSN of its ``postgres`` database and an idempotent stop.

    ``base_dir`` is used when not root; as root the data lives in a fresh dir under the system
    temp dir, since the ``postgres`` user cannot enter pytest's private temp dirs.
    """
    bin_dir = find_bin_dir()
    as_root = os.geteuid() == 0
    if as_root or base_dir is None:
        root = Path(tempfile.mkdtemp(prefix="voicedock-pg-"))
    else:
        root = Path(tempfile.mkdtemp(prefix="pg-", dir=base_dir))
    prefix: list[str] = []
    if as_root:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable("no 'postgres' OS user to run the server as") from exc
        os.chown(root, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    port = free_port()

    def run(*args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{Path(args[0]).name} failed ({result.returncode}): "
                f"{result.stderr.strip()[-2000:]} {tail}"
            )

    stopped = False

    def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        try:
            if (data / "postmaster.pid").exists():
                # Immediate: no shutdown checkpoint, the data is thrown away just after.
                with timed("PostgreSQL stopped"):
                    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        finally:
            databases = sum(1 for _ in (data / "base").iterdir()) if (data / "base").is_dir() else 0
            with timed(f"PostgreSQL's data deleted ({databases} databases)"):
                shutil.rmtree(root, ignore_errors=True)

    try:
        run(
            str(bin_dir / "initdb"),
            "-D", str(data),
            "-U", SUPERUSER,
            "-A", "trust",
            "-E", "UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        options = f"-h 127.0.0.1 -p {port} -k {root} -F -c max_connections=200"
        run(
            str(bin_dir / "pg_ctl"),
            "-D", str(data),
            "-o", options,
            "-l", str(log),
            "-w", "-t", "60",
            "start",
        )  # fmt: skip
    except (PostgresUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        stop()
        if isinstance(exc, PostgresUnavailable):
            raise
        raise PostgresUnavailable(f"cannot start PostgreSQL: {exc}") from exc
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres", stop


def database_dsn(server_dsn: str, name: str) -> str:
    return server_dsn.rsplit("/", 1)[0] + "/" + name


async def fresh_database(
    server_dsn: str, *, for_the_session: bool = False, migrated: bool = False
) -> str:
    """Create an empty database on the server and return its DSN; ``migrated``: a copy of one
    the store migrated once per server and process (``_migrated_template``), for a test that
    starts a service on it and cares not how its schema came about (its own migration then
    finds nothing to do: ~0.15 s and some 500 statements fewer per test).

    It is dropped when the test that made it ends (``drop_fresh_databases``), unless it is
    ``for_the_session``: a worker's tests make some 600 databases of ~8 MB, and deleting them
    all when PostgreSQL stops took 27 s at the end of the run (12 ms each as they go).

    From PostgreSQL 15 on, as a copy of the template's files (``STRATEGY = FILE_COPY``) rather
    than through the write-ahead log: a session creates a few hundred databases, and logging
    each one's pages cost ~1 GB of WAL, twice the creation time and a long stop."""
    name = f"voicedock_test_{os.getpid()}_{next(_database_numbers)}"
    conn = await asyncpg.connect(server_dsn)
    try:
        version = int(await conn.fetchval("SHOW server_version_num"))
        strategy = " STRATEGY = FILE_COPY" if version >= 150000 else ""
        template = f' TEMPLATE "{await _migrated_template(server_dsn)}"' if migrated else ""
        await conn.execute(f'CREATE DATABASE "{name}"{template}{strategy}')
    finally:
        await conn.close()
    if not for_the_session:
        _fresh.append((server_dsn, name))
    return database_dsn(server_dsn, name)


async def _migrated_template(server_dsn: str) -> str:
    """The name of this process's migrated template database on the server, made at the first
    call: the schema ``voicedock.store`` migrates to, no rows of a test in it (no test runs on
    it; a copy is made only while nothing is connected to it)."""
    name = _templates.get(server_dsn)
    if name is None:
        from voicedock.store import open_store  # the code under test, imported only here

        name = f"voicedock_template_{os.getpid()}"
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        store = await open_store(database_dsn(server_dsn, name))
        try:
            await store.migrate()
        finally:
            await store.aclose()
        _templates[server_dsn] = name
    return name


def drop_fresh_databases() -> None:
    """Drop the databases made since the last call, their connections closed by force (what
    the test left open is over with the test). Synchronous, for a fixture's teardown: the
    statements run on a loop of their own in a thread, not on the test's loop. A database
    that cannot be dropped stays for the server's deletion at the session's end."""
    if not _fresh:
        return
    made = list(_fresh)
    _fresh.clear()

    async def drop() -> None:
        for server_dsn, name in made:
            try:
                conn = await asyncpg.connect(server_dsn)
            except (OSError, asyncpg.PostgresError):
                continue  # the server is gone: its data goes with it
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except asyncpg.PostgresError:
                pass
            finally:
                await conn.close()

    dropping = threading.Thread(target=asyncio.run, args=(drop(),), name="drop-databases")
    dropping.start()
    dropping.join()


async def truncate_all_tables(
    dsn: str, keep: frozenset[str] = frozenset({"schema_migrations"})
) -> None:
    """Empty every table of the database (identities restart); much faster than a new one."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = [r["tablename"] for r in rows if r["tablename"] not in keep]
        if tables:
            quoted = ", ".join(f'"{t}"' for t in tables)
            await conn.execute(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
