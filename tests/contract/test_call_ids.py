"""The engine's call ids and the PBX side's one validator (``domain.ids.is_call_id``) agree."""

from __future__ import annotations

import uuid

import pytest

from voicedock.domain.ids import is_call_id, mask_call_id, new_inbound_call_id, new_outbound_call_id
from voicedock.pbx.asterisk import originate as asterisk
from voicedock.pbx.freeswitch import commands as freeswitch_commands
from voicedock.pbx.freeswitch.commands import (
    UnsafeCommandValue,
    build_originate,
    build_uuid_set_call_id,
)

pytestmark = pytest.mark.unit

CHANNEL = "0b9f3c52-5d6e-4b8a-9c1d-2e3f4a5b6c7d"


@pytest.mark.parametrize(
    "call_id",
    [
        new_outbound_call_id(),
        new_inbound_call_id("+31623731537"),
        new_inbound_call_id(None),  # anonymous: call-_unknown_<12>
        new_inbound_call_id("sip:anon@example.com"),
    ],
    ids=["outbound", "inbound", "anonymous", "sip-uri"],  # fixed: one collection per xdist worker
)
def test_every_engine_id_is_a_call_id_everywhere(call_id: str) -> None:
    assert is_call_id(call_id)
    # one validator, not a second regex
    assert asterisk.is_call_id is is_call_id
    assert freeswitch_commands.is_call_id is is_call_id
    command = build_originate(
        call_uuid=CHANNEL,
        call_id=call_id,
        destination="+15551234567",
        caller_id_number="+15557654321",
        gateway="carrier1",
    )
    assert f",voicedock_call_id={call_id}," in command
    assert build_uuid_set_call_id(CHANNEL, call_id).endswith(f" voicedock_call_id {call_id}")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(str(uuid.uuid4()), id="a-uuid"),  # fixed id: one collection per worker
        "call-outbound-abc",  # too short
        "call-outbound-abcdefgh12345678\n",
        "call-outbound-abcdefgh1234567,",
        "call-outbound-abcdefgh1234567\u0663",  # a unicode digit
        "call-_+31623731537_abcdefABCDE}",
        "call-_31623731537_abcdefABCDEF",  # no +
        "call-_+3162373153${x}_abcdefABCDEF",
        "call-_anonymous_abcdefABCDEF",
        "",
        None,
        42,
    ],
)
def test_anything_else_is_refused(value: object) -> None:
    assert not is_call_id(value)
    if isinstance(value, str):
        with pytest.raises(UnsafeCommandValue):
            build_uuid_set_call_id(CHANNEL, value)


def test_masked_call_id_hides_the_callers_number() -> None:
    inbound = new_inbound_call_id("+31623731537")
    masked = mask_call_id(inbound)
    assert "+31623731537" not in masked
    assert masked.startswith("call-_+316***37_")
    assert masked.endswith(inbound[-12:])
    outbound = new_outbound_call_id()
    assert mask_call_id(outbound) == outbound
    assert mask_call_id("call-_unknown_abcdefABCDEF") == "call-_unknown_abcdefABCDEF"
