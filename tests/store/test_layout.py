"""The store's layout holds: each concept's protocol (``store/protocols/<concept>.py``) has its
SQL in the module of the same name (``store/sql/<concept>.py``), whose part implements every
method the protocol names; ``Transaction``/``Store`` and ``SqlTransaction``/``SqlReads`` are
composed of exactly those parts. A method added to a concept without its SQL beside it, or a
part left out of the composition, fails here by name."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import voicedock.store.protocols
from voicedock.store.base import Store, Transaction
from voicedock.store.sql.reads import SqlReads
from voicedock.store.sql.transaction import SqlTransaction

pytestmark = pytest.mark.unit

# Methods that hand out another object over the backend's own connections: each backend's.
BACKEND_METHODS = {"mailbox", "outbox"}


def _concepts() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(voicedock.store.protocols.__path__)]


def _protocols(module: ModuleType) -> dict[str, type]:
    """The ``...Writes`` / ``...Reads`` protocols a concept module defines."""
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and value.__module__ == module.__name__
        and name.endswith(("Writes", "Reads"))
    }


def _own_methods(cls: type) -> set[str]:
    """The methods a protocol declares (its own and those of its protocol bases)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object or klass.__module__ == "typing":
            continue
        names |= {n for n, v in vars(klass).items() if callable(v) and not n.startswith("_")}
    return names


def test_every_concept_protocol_has_its_sql_part_beside_it() -> None:
    concepts = _concepts()
    assert len(concepts) > 10
    for concept in concepts:
        protocols = _protocols(importlib.import_module(f"voicedock.store.protocols.{concept}"))
        assert protocols, f"store/protocols/{concept}.py defines no ...Writes or ...Reads"
        sql = importlib.import_module(f"voicedock.store.sql.{concept}")
        for name, protocol in protocols.items():
            part = getattr(sql, f"Sql{name}", None)
            assert part is not None, f"store/sql/{concept}.py has no Sql{name}"
            # Its own methods, or a base's in the same module (reads a transaction shares).
            beside = {n for k in part.__mro__ if k.__module__ == sql.__name__ for n in vars(k)}
            missing = _own_methods(protocol) - BACKEND_METHODS - beside
            assert not missing, f"Sql{name} (store/sql/{concept}.py) lacks {sorted(missing)}"


def test_the_store_and_its_sql_are_composed_of_every_concept() -> None:
    writes: list[type] = []
    reads: list[type] = []
    for concept in _concepts():
        for name, protocol in _protocols(
            importlib.import_module(f"voicedock.store.protocols.{concept}")
        ).items():
            (writes if name.endswith("Writes") else reads).append(protocol)
    assert set(writes) == {b for b in Transaction.__bases__ if b.__name__ != "Protocol"}
    assert set(reads) == {b for b in Store.__bases__ if b.__name__ != "Protocol"}
    assert {b.__name__ for b in SqlTransaction.__bases__} == {f"Sql{w.__name__}" for w in writes}
    assert {b.__name__ for b in SqlReads.__bases__} == {f"Sql{r.__name__}" for r in reads}
