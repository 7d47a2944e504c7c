import dataclasses

import pytest
from panoramisk.actions import Action
from panoramisk.message import Message

from voicedock.pbx.asterisk.ami.messages import (
    AmiFullyBooted,
    AmiHangup,
    AmiOriginateResponse,
    AmiOther,
    AmiReply,
    AmiRinging,
    AmiValueError,
    check_ami_value,
    check_headers,
    check_variable,
    originate_action,
    parse_ami_event,
    parse_ami_reply,
    pjsip_dial_string,
)
from voicedock.pbx.base import OriginateRequest

pytestmark = pytest.mark.unit

INJECTIONS = [
    "harmless\nVariable: Y",
    "x\r\n\r\nAction: Ping\r\nActionID: INJECTED-PING",
    "x\rAction: Hangup",
    "nul\x00byte",
    "tab\tinside",
    "del\x7f",
    "\u2028line-separator",
    "caf\u00e9",
    "\uff13\uff11",  # fullwidth digits
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_values_with_control_or_non_ascii_characters_are_refused(value):
    with pytest.raises(AmiValueError):
        check_ami_value("CallerID", value)
    with pytest.raises(AmiValueError):
        check_headers({"Action": "Ping", "X": value})


def test_overlong_values_are_refused():
    with pytest.raises(AmiValueError):
        check_ami_value("Data", "a" * 2000)


def test_variable_values_may_not_contain_commas_and_names_are_plain():
    assert check_variable("LAB_TAG", "abc") == "LAB_TAG=abc"
    with pytest.raises(AmiValueError):
        check_variable("NAME", "Smith,INJECTED=yes")
    for bad_name in ("SHELL(rm -rf /)", "PJSIP_HEADER(add,X)", "A=B", "", "1abc"):
        with pytest.raises(AmiValueError):
            check_variable(bad_name, "v")


def test_header_names_are_checked_too():
    with pytest.raises(AmiValueError):
        check_headers({"Action: Ping\r\nX": "1"})


@pytest.mark.parametrize(
    ("destination", "endpoint"),
    [
        ("+31612345678&PJSIP/+31999@carrier", "carrier"),
        ("+31612345678/sip:evil@example.com", "carrier"),
        ("+31612345678,30,U(x)", "carrier"),
        ("31612345678", "carrier"),
        ("+٣١٦١٢٣٤٥٦٧٨", "carrier"),
        ("+31612345678", "carrier/sip:evil"),
        ("+31612345678", "carrier@x"),
        ("+31612345678", ""),
    ],
)
def test_dial_string_injection_is_refused(destination, endpoint):
    with pytest.raises(AmiValueError):
        pjsip_dial_string(destination, endpoint)


_REQUEST = OriginateRequest(
    call_id="call-outbound-0123456789abcdef",
    destination="+31612345678",
    caller_id="+31850835037",
    trunk_endpoint="carrier",
    timeout_seconds=30,
)


def test_originate_is_async_into_stasis_with_our_channel_id():
    headers = originate_action(
        _REQUEST,
        app="voicedock",
    )
    assert headers == {
        "Action": "Originate",
        "Channel": "PJSIP/+31612345678@carrier",
        "Application": "Stasis",
        "Data": "voicedock,outbound,call-outbound-0123456789abcdef",
        "CallerID": "+31850835037",
        "ChannelId": "call-outbound-0123456789abcdef",
        "Timeout": "30000",
        "Async": "true",
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"call_id": "call,evil"},
        {"call_id": "c\r\nAction: Ping"},
        {"caller_id": '"Evil" <+31850835037>'},
        {"caller_id": "+31850835037\r\nAction: Hangup"},
        {"app": "voicedock,inbound"},
        {"timeout_seconds": 0},
    ],
)
def test_originate_refuses_bad_parts(overrides):
    fields = {name: value for name, value in overrides.items() if name != "app"}
    with pytest.raises(AmiValueError):
        originate_action(
            dataclasses.replace(_REQUEST, **fields), app=overrides.get("app", "voicedock")
        )


def test_originate_variables_are_checked():
    with pytest.raises(AmiValueError):
        originate_action(_REQUEST, app="voicedock", variables={"TAG": "a,INJECTED=1"})


async def test_serialised_action_has_exactly_one_action_line():
    # What panoramisk writes for a validated originate: one block, no smuggled lines.
    headers = originate_action(
        _REQUEST,
        app="voicedock",
        variables={"LAB_TAG": "t1"},
    )
    wire = str(Action(headers))
    lines = wire.split("\r\n")
    assert sum(1 for line in lines if line.lower().startswith("action:")) == 1
    assert "Variable: LAB_TAG=t1" in lines
    assert wire.endswith("\r\n\r\n")
    assert "\n" not in wire.replace("\r\n", "")


def test_parse_hangup_with_cause_and_sip_code():
    msg = Message(
        {
            "Event": "Hangup",
            "Channel": "PJSIP/carrier-0000004a",
            "Uniqueid": "call-1",
            "Cause": "17",
            "Cause-txt": "User busy",
            "TechCause": "486",
        }
    )
    assert parse_ami_event(msg) == AmiHangup("call-1", "PJSIP/carrier-0000004a", 17, 486)


def test_parse_hangup_without_tech_cause():
    event = parse_ami_event({"Event": "Hangup", "Uniqueid": "c", "Cause": "16"})
    assert event == AmiHangup("c", "", 16, None)


def test_parse_ringing_and_originate_response():
    assert parse_ami_event(
        {"Event": "DialState", "DialStatus": "RINGING", "DestUniqueid": "c1"}
    ) == AmiRinging("c1")
    assert parse_ami_event({"Event": "Newstate", "ChannelState": "5", "Uniqueid": "c2"}) == (
        AmiRinging("c2")
    )
    assert parse_ami_event({"Event": "Newstate", "ChannelState": "6", "Uniqueid": "c2"}) == (
        AmiOther("Newstate")
    )
    response = parse_ami_event(
        Message(
            {
                "Event": "OriginateResponse",
                "Response": "Failure",
                "Reason": "0",
                "Uniqueid": "c3",
                "Channel": "PJSIP/+31610000404@carrier",
            }
        )
    )
    assert response == AmiOriginateResponse("c3", False, 0, "PJSIP/+31610000404@carrier")
    assert parse_ami_event({"Event": "FullyBooted"}) == AmiFullyBooted()


def test_an_action_reply_is_read_from_panoramisk_s_message_as_it_counts_success():
    pong = Message.from_line("Response: Success\r\nActionID: a/1\r\nPing: Pong\r\n")
    refused = Message({"Response": "Error", "Message": "Authentication failed"})
    assert parse_ami_reply(pong) == AmiReply(success=True, ping="Pong")
    assert parse_ami_reply(refused) == AmiReply(success=False, message="Authentication failed")
    for raw in ({"Response": "Follows"}, {"Response": "Goodbye"}, {"Event": "FullyBooted"}):
        assert parse_ami_reply(Message(raw)).success == Message(raw).success is True
