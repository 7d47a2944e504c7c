"""Fixtures every test directory shares: the session's lab Asterisk (see lab_session.py) and
one PostgreSQL server for the session (each test that needs one makes its own database).

``scripts/test.sh`` runs the suite on several pytest-xdist workers (``--dist loadscope``: a
module stays on one worker). Each worker is its own session: its own lab Asterisk, lab
FreeSWITCH and PostgreSQL server, on ports chosen at run time, so workers never share a call,
a port or a database.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import ClientResponse

import freeswitch_lab_session
import lab_health
import lab_session
import slowest_modules
import teardown_parts
from freeswitch_lab_session import freeswitch_lab
from lab_health import _lab_answers
from lab_logs import pytest_runtest_makereport
from lab_session import lab, lab16
from pg_server import PostgresUnavailable, drop_fresh_databases, start_postgres
from slowest_modules import pytest_runtest_logreport

__all__ = [
    "_fresh_databases_dropped",
    "_lab_answers",
    "freeswitch_lab",
    "lab",
    "lab16",
    "postgres_server",
    "pytest_collection_finish",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_logreport",
    "pytest_runtest_makereport",
    "pytest_runtest_setup",
    "pytest_terminal_summary",
]

# A module with a test of these places real calls: it mostly waits on audio in real time.
LAB_MARKERS = ("asterisk", "asterisk16", "freeswitch_lab", "e2e")


# A test whose cases differ in what the store does (another resource's queries, another
# grouping): each of its cases runs on PostgreSQL too (``variants_on_sqlite``).
EVERY_BACKEND = "every_backend"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{EVERY_BACKEND}: every case on PostgreSQL too, not only the first"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test's reports say what it needs (``slowest_modules``); a test's variants run on
    SQLite alone (``variants_on_sqlite``); on an xdist worker, the lab modules go first (see
    ``lab_modules_first``)."""
    items[:] = variants_on_sqlite(config, items)
    slowest_modules.mark_need(items)
    if "PYTEST_XDIST_WORKER" in os.environ:
        lab_modules_first(items)


def variants_on_sqlite(config: pytest.Config, items: list[pytest.Item]) -> list[pytest.Item]:
    """A test parametrized over the store's backends (``database_url``: SQLite and PostgreSQL)
    and over cases of its own runs its first case on both, the others on SQLite alone: they are
    variants of one path through the store (mostly refusals answered before it), which the first
    case proves on PostgreSQL (docs/testing.md). A test marked ``every_backend`` runs each case
    on both."""
    kept: list[pytest.Item] = []
    variants: list[pytest.Item] = []
    for item in items:
        spec = getattr(item, "callspec", None)
        variant = (
            spec is not None
            and spec.params.get("database_url") == "postgres"
            and any(index for name, index in spec.indices.items() if name != "database_url")
            and item.get_closest_marker(EVERY_BACKEND) is None
        )
        (variants if variant else kept).append(item)
    if variants:
        config.hook.pytest_deselected(items=variants)
    return kept


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test with none of the markers pyproject.toml registers (``unit``, ``asterisk``, ...)
    fails: ``-m unit`` and the lab selections would silently leave it out."""
    kinds = kind_markers(item.config)
    if not _has_any(item, kinds):
        pytest.fail(
            f"no kind marker ({', '.join(kinds)}): mark the module (pytestmark) or the test",
            pytrace=False,
        )


def kind_markers(config: pytest.Config) -> list[str]:
    """The markers pyproject.toml registers (plugins register theirs too: not those)."""
    if not _KINDS:
        assert config.inipath is not None
        with config.inipath.open("rb") as ini:
            registered = tomllib.load(ini)["tool"]["pytest"]["ini_options"]["markers"]
        _KINDS.extend(line.split(":", 1)[0].strip() for line in registered)
    return _KINDS


_KINDS: list[str] = []


def _has_any(item: pytest.Item, markers: list[str]) -> bool:
    return any(item.get_closest_marker(name) is not None for name in markers)


def lab_modules_first(items: list[pytest.Item]) -> None:
    """The modules that place real calls first, each module's tests in their order. Every
    worker sorts the same way (xdist requires one collection), the long lab modules start at
    once and the quick unit modules fill in around them instead of trailing behind (the two
    workers of a full run end within seconds of each other: longest-first gains nothing)."""
    first: dict[str, int] = {}
    lab_modules: set[str] = set()
    for index, item in enumerate(items):
        module = item.nodeid.split("::", 1)[0]
        first.setdefault(module, index)
        if _has_any(item, list(LAB_MARKERS)):
            lab_modules.add(module)

    def order(item: pytest.Item) -> tuple[bool, int]:
        module = item.nodeid.split("::", 1)[0]
        return module not in lab_modules, first[module]

    items.sort(key=order)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Provision the lab PBXs the selected tests need, before any test's timeout runs."""
    lab_session.pytest_collection_finish(session)
    freeswitch_lab_session.build_after_collection(session)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After pytest's own: the slowest modules, the slow session teardowns, then each restart
    of a lab Asterisk."""
    slowest_modules.summary(terminalreporter)
    teardown_parts.summary(terminalreporter)
    lab_health.summary(terminalreporter)


@pytest.fixture(autouse=True)
def _fresh_databases_dropped() -> Iterator[None]:
    """The PostgreSQL databases a test made are dropped when it ends (``fresh_database``);
    autouse, so its teardown comes after the test's own fixtures closed their connections."""
    yield
    drop_fresh_databases()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """DSN of a PostgreSQL server started for this test session (skip/fail if impossible)."""
    try:
        dsn, stop = start_postgres()
    except PostgresUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield dsn
    finally:
        stop()  # its parts timed (pg_server.py)


@pytest.fixture
async def streams() -> AsyncIterator[list[ClientResponse]]:
    """Responses of the event streams a test opens (``GET /calls/{id}/events``): closed when
    the test ends, however it ends."""
    opened: list[ClientResponse] = []
    yield opened
    for resp in opened:
        resp.close()
