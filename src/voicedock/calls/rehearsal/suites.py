"""What no schema states of a test suite (``domain/rehearsal.py`` states the rest): each
scenario has steps or a persona, a said expectation one of ``contains`` and ``regex`` (a simple
one), a tool mocked once, scenario names of their own; 400 naming the field."""

from __future__ import annotations

from collections.abc import Sequence

from voicedock.domain.rehearsal import Scenario, scenario_refusal
from voicedock.errors import BadRequest

INVALID_SCENARIO = "Invalid scenario"


def check_scenarios(scenarios: Sequence[Scenario], where: str = "scenarios") -> None:
    """400 naming the first scenario's field that breaks a rule no schema states."""
    names: set[str] = set()
    for index, scenario in enumerate(scenarios):
        found = scenario_refusal(scenario)
        if found is not None:
            field, why = found
            raise BadRequest(f"{where}[{index}].{field}: {why}", error=INVALID_SCENARIO)
        if scenario.name in names:
            raise BadRequest(
                f"{where}[{index}].name: each scenario's name is its own", error=INVALID_SCENARIO
            )
        names.add(scenario.name)
