"""The lab's tiny AMI codec, byte for byte."""

from __future__ import annotations

import pytest

from voicedock_lab.ami_probe import encode_action, split_messages

pytestmark = pytest.mark.unit


def test_encode_action_keeps_order_and_repeated_keys() -> None:
    raw = encode_action([("Action", "Originate"), ("Variable", "A=1"), ("Variable", "B=2")])
    assert raw == b"Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n"


def test_encode_action_refuses_header_injection() -> None:
    with pytest.raises(ValueError, match="line break"):
        encode_action([("Channel", "PJSIP/1@x\r\nAction: Command")])


def test_split_messages_returns_complete_messages_and_the_rest() -> None:
    data = (
        b"Response: Success\r\nActionID: lab-1\r\nMessage: Authentication accepted\r\n\r\n"
        b"Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\nEvent: Newch"
    )
    messages, rest = split_messages(data)
    assert messages == [
        {"Response": "Success", "ActionID": "lab-1", "Message": "Authentication accepted"},
        {"Event": "FullyBooted", "Status": "Fully Booted"},
    ]
    assert rest == b"Event: Newch"


def test_values_may_contain_colons() -> None:
    messages, _ = split_messages(b"Event: X\r\nUniqueid: a:b:c\r\n\r\n")
    assert messages[0]["Uniqueid"] == "a:b:c"
