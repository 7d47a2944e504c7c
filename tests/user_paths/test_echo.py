"""A line that echoes the assistant back, on each lab PBX: the echo party returns everything
it hears, and the assistant's own voice coming back must not interrupt it (docs/speech.md,
"Echo"). The lab Asterisk's echo-then-talk party, which interrupts for real after the echo, is
in ``tests/e2e/test_echo_e2e.py``."""

from __future__ import annotations

import pytest

from e2e.audio_helpers import transcript
from user_paths.backends import UserPathBackend
from user_paths.fixtures import BACKEND_MARKS, backend
from user_paths.scenarios import hang_up, place, wait_transcript

__all__ = ["backend"]

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]

ECHO_PARTY = "+31612345677"  # both labs: records, returns what it hears
GREETING = (
    "Hello, this is the city library. Our opening hours are from nine in the morning "
    "until six in the evening."
)


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(name, marks=BACKEND_MARKS[name], id=name)
        for name in ("asterisk", "asterisk-rtp", "asterisk16", "freeswitch")
    ],
    indirect=True,
)
async def test_an_echoing_line_hears_the_whole_greeting(backend: UserPathBackend) -> None:
    call_id = await place(backend, ECHO_PARTY, assistant_override={"first_message": GREETING})
    greeting = await wait_transcript(backend, call_id, lambda m: m["role"] == "assistant", 30)
    assert (greeting["content"], greeting["interrupted"]) == (GREETING, False)
    record = await hang_up(backend, call_id)
    assert [m["role"] for m in transcript(record)] == ["assistant"]  # its echo was no caller
