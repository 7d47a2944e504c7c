"""``backend``: each call-contract test runs once per PBX backend (see ``backends.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from contract.backends import Backend, asterisk_lab, freeswitch_fake, freeswitch_lab

__all__ = ["backend"]


@pytest.fixture(
    params=[
        pytest.param("freeswitch-fake", marks=pytest.mark.unit),
        pytest.param("asterisk-lab", marks=pytest.mark.asterisk),
        pytest.param("freeswitch-lab", marks=pytest.mark.freeswitch_lab),
    ]
)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "freeswitch-fake":
        async with freeswitch_fake() as fs:
            yield fs
        return
    if request.param == "freeswitch-lab":
        async with freeswitch_lab(request.getfixturevalue("freeswitch_lab")) as fs:
            yield fs
        return
    the_lab: Any = request.getfixturevalue("lab")
    async with asterisk_lab(the_lab) as ast:
        yield ast
