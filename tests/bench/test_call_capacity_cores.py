"""``bench/call_capacity.py``'s cores of the load (``--load-cores``) and its machine line."""

from __future__ import annotations

import argparse

import pytest
from call_capacity import cores_text, machine, parse_cores

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("given", "cores", "said"),
    [
        ("1", {1}, "core 1"),
        ("8-15", set(range(8, 16)), "cores 8-15"),
        ("8,9,12", {8, 9, 12}, "cores 8,9,12"),
        ("0-1, 4", {0, 1, 4}, "cores 0,1,4"),
    ],
)
def test_the_loads_cores_are_one_a_range_or_a_list(given: str, cores: set[int], said: str) -> None:
    assert parse_cores(given) == cores
    assert cores_text(parse_cores(given)) == said


@pytest.mark.parametrize("given", ["", "a", "3-x", ","])
def test_what_names_no_cores_is_refused(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_cores(given)


def test_the_machine_is_named_as_it_is() -> None:
    line = machine()
    assert "2-core VM" not in line  # no fixed claim about the machine
    assert "GiB memory" in line
    assert "load average when the run began" in line
