"""A short soak (``bench/soak.py``'s harness): 20 calls at once for 50 s, over 50 calls in all,
through a voicedock node on PostgreSQL and the lab Asterisk, with commands, transfers, parties
and callers hanging up; nothing may be lost or stuck.

Calls of 8-14 s, each with a command (``bench/soak.py`` has the long calls): outbound ones to
the lab's soak party (``say``, ``inject-context``, then ``end-call`` or a blind transfer to
``sales``), some to the party that hangs up by itself, and inbound calls from the lab's
carrier. At the end: no call connecting or in progress, every call ended the way the run asked,
nothing left at the PBX, one end-of-call report per call (signed), every command answered as
expected, no error-level line or traceback in the node's log, and the node's open file
descriptors back where they were before the first call (no leak per call).
Timings are not asserted: the bench measures them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pg_server import fresh_database
from soak.harness import Plan, Soak
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres, pytest.mark.e2e]

PLAN = Plan(
    calls_at_once=20,  # the tests' lab carries 50 calls (200 RTP ports), transfers included
    minutes=50 / 60,
    min_call_s=8,
    max_call_s=14,
    commands_per_minute=6,
    transfer_share=0.15,
    inbound_share=0.15,
    sample_every=2.0,
    settle_s=60,
)
AT_LEAST = 50  # calls in all


@pytest.mark.timeout(240)
async def test_a_short_soak_loses_nothing_and_leaves_nothing(
    lab: LabAsterisk, postgres_server: str, tmp_path: Path
) -> None:
    database = await fresh_database(postgres_server)
    result = await Soak(PLAN, lab, database, tmp_path).run()

    assert result.total_calls >= AT_LEAST, result.end_reasons
    kinds = {kind.split(":")[0] for kind in result.end_reasons}
    assert {"talker", "leaver", "inbound"} <= kinds, result.end_reasons
    assert result.commands["transfer 200"] > 0, result.commands
    assert result.commands["say 200"] > 0, result.commands
    assert result.commands["inject-context 200"] > 0, result.commands
    result.assert_nothing_lost()
    assert result.redeliveries == 0  # one node, an endpoint answering 200 at once
    assert result.webhooks["end-of-call-report"] == result.total_calls
    assert result.node_exits == {"a": None}
    # No descriptor leaked per call: once every call is over (and the harness's connections to
    # the node closed), the node holds what it held before the first one, pools aside.
    (before, kinds_before), (after, kinds_after) = result.fds_before["a"], result.fds_after["a"]
    assert after <= before + 20, (kinds_before, kinds_after)  # a leak per call: 50 or more
