"""A part's callback into its owner that never keeps the owner alive."""

from __future__ import annotations

import gc
import weakref

import pytest

from voicedock.weak import weak_method

pytestmark = pytest.mark.unit


class Owner:
    def __init__(self) -> None:
        self.told: list[str] = []
        self.part = Part(weak_method(self.tell))

    def tell(self, what: str, *, loud: bool = False) -> int:
        self.told.append(what.upper() if loud else what)
        return len(self.told)


class Part:
    def __init__(self, tell: object) -> None:
        self.tell = tell


def test_the_part_calls_its_owner_s_method() -> None:
    owner = Owner()
    assert owner.part.tell("hello") == 1
    assert owner.part.tell("again", loud=True) == 2
    assert owner.told == ["hello", "AGAIN"]


def test_the_owner_and_its_part_are_freed_without_the_collector() -> None:
    enabled = gc.isenabled()
    gc.disable()
    try:
        owner = Owner()
        part, gone = owner.part, weakref.ref(owner)
        del owner
        assert gone() is None
        with pytest.raises(ReferenceError, match=r"Owner\.tell"):
            part.tell("late")
    finally:
        if enabled:
            gc.enable()


def test_only_a_bound_method_is_taken() -> None:
    with pytest.raises(TypeError):
        weak_method(print)
