"""Pure parts of the Asterisk transfers: dialplan targets and the Dial event's caller."""

from __future__ import annotations

import json

import pytest

from voicedock.pbx.asterisk.ari.events import DialProgress, parse_ari_event
from voicedock.pbx.asterisk.transfers.context import (
    DialplanTarget,
    TransferRefused,
    dialplan_target,
)
from voicedock.pbx.base import TransferTarget

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (TransferTarget("+31201234567"), DialplanTarget("+31201234567")),
        (TransferTarget("sales", internal=True), DialplanTarget("sales")),
        (TransferTarget("queue:support", internal=True), DialplanTarget("queue-support")),
        (
            TransferTarget("sip:alice@pbx.example.com", internal=True),
            DialplanTarget("sip-uri", {"VOICEDOCK_TRANSFER_URI": "sip:alice@pbx.example.com"}),
        ),
    ],
)
def test_targets_map_to_transfers_context_extensions(
    target: TransferTarget, expected: DialplanTarget
) -> None:
    assert dialplan_target(target) == expected


@pytest.mark.parametrize(
    "target",
    [
        TransferTarget("sales"),  # a name must be an internal target
        TransferTarget("sales&PJSIP/x", internal=True),
        TransferTarget("queue:a,b", internal=True),
        TransferTarget("sip:alice@pbx.example.com;x=y", internal=True),
        TransferTarget("sip:alice@", internal=True),
        TransferTarget("fax:alice", internal=True),
        TransferTarget("+31 20 1234567"),
    ],
)
def test_anything_else_is_refused_before_the_pbx(target: TransferTarget) -> None:
    with pytest.raises(TransferRefused):
        dialplan_target(target)


def test_dial_event_names_the_dialling_caller() -> None:
    frame = {
        "type": "Dial",
        "dialstatus": "ANSWER",
        "peer": {"id": "peer-1", "name": "PJSIP/carrier-00000002"},
        "caller": {"id": "call-1", "name": "PJSIP/carrier-00000000"},
    }
    event = parse_ari_event(json.dumps(frame))
    assert isinstance(event, DialProgress)
    assert (event.dialstatus, event.peer.id) == ("ANSWER", "peer-1")
    assert event.caller is not None
    assert event.caller.id == "call-1"
    del frame["caller"]
    originated = parse_ari_event(json.dumps(frame))
    assert isinstance(originated, DialProgress)
    assert originated.caller is None
