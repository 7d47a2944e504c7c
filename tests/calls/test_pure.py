"""Pure pieces: transitions, control parsing, deep merge, ids, cursors, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from voicedock.api.body import decode_cursor, encode_cursor, parse_json
from voicedock.api.models.calls import control_command
from voicedock.calls.assistants.config import deep_merge
from voicedock.calls.control import EndCall, InjectContext, Say, Transfer
from voicedock.calls.transitions import apply_pbx_event
from voicedock.domain.ids import new_inbound_call_id, new_outbound_call_id
from voicedock.domain.records import Call, CallStatus, Direction
from voicedock.domain.timestamps import iso
from voicedock.errors import BadRequest
from voicedock.pbx.base import PbxEvent, PbxEventKind
from voicedock.pbx.causes import CALLER_LEFT, CallError, error_for_unanswered
from voicedock.store.base import CallCursor

pytestmark = pytest.mark.unit

T0 = datetime(2025, 12, 13, 10, 0, tzinfo=UTC)


def call(status: CallStatus, started: datetime | None = None) -> Call:
    return Call("c1", "org", Direction.OUTBOUND, status, "+31612345678", "+31850835037",
                started_at=started)  # fmt: skip


def test_answer_then_hangup_computes_duration() -> None:
    answered = apply_pbx_event(
        call(CallStatus.CONNECTING), PbxEvent("c1", PbxEventKind.ANSWERED), T0
    )
    assert answered is not None
    assert answered.status is CallStatus.IN_PROGRESS
    ended = apply_pbx_event(
        answered, PbxEvent("c1", PbxEventKind.HANGUP, 16), T0 + timedelta(seconds=84.4)
    )
    assert ended is not None
    assert ended.status is CallStatus.ENDED
    assert ended.duration_seconds == 84


@pytest.mark.parametrize("status", [CallStatus.ENDED, CallStatus.FAILED])
@pytest.mark.parametrize("kind", list(PbxEventKind))
def test_terminal_states_never_move(status: CallStatus, kind: PbxEventKind) -> None:
    assert apply_pbx_event(call(status, T0), PbxEvent("c1", kind, 17, 486), T0) is None


def test_ringing_and_dtmf_do_not_move() -> None:
    for kind in (PbxEventKind.RINGING, PbxEventKind.DTMF, PbxEventKind.TRANSFER_FAILED):
        assert apply_pbx_event(call(CallStatus.CONNECTING), PbxEvent("c1", kind), T0) is None


def test_a_caller_gone_before_the_answer_is_not_answered_never_a_pbx_error() -> None:
    connecting = call(CallStatus.CONNECTING)
    left = apply_pbx_event(connecting, PbxEvent("c1", PbxEventKind.HANGUP, detail=CALLER_LEFT), T0)
    unknown = apply_pbx_event(connecting, PbxEvent("c1", PbxEventKind.HANGUP), T0)
    assert left is not None
    assert unknown is not None
    assert (left.status, left.error) == (CallStatus.FAILED, "no-answer")
    assert (unknown.status, unknown.error) == (CallStatus.FAILED, "pbx-error")
    # A cause that says more still decides; one that says nothing does not make it a PBX error.
    assert error_for_unanswered(17, 486, caller_left=True) is CallError.BUSY
    assert error_for_unanswered(127, None, caller_left=True) is CallError.NO_ANSWER
    assert error_for_unanswered(127, None) is CallError.PBX_ERROR


def test_control_commands() -> None:
    assert control_command({"type": "say", "content": "hi"}) == Say("hi")
    assert control_command(
        {"type": "inject-context", "content": "x", "trigger_response": True}
    ) == InjectContext("x", True)
    assert control_command({"type": "end-call", "content": "bye"}) == EndCall("bye")
    assert control_command({"type": "transfer", "destination": "sales"}) == Transfer("sales")
    with pytest.raises(BadRequest):
        control_command({"type": "transfer", "destination": "sales\r\nX: y"})


def test_deep_merge_replaces_lists_and_merges_objects() -> None:
    base = {"llm_config": {"model": "a", "messages": [{"role": "system", "content": "x"}]}}
    merged = deep_merge(base, {"llm_config": {"messages": []}, "first_message": "Hi"})
    assert merged == {"llm_config": {"model": "a", "messages": []}, "first_message": "Hi"}
    assert base["llm_config"]["messages"]  # the saved configuration is untouched


def test_ids_have_documented_shapes() -> None:
    assert new_outbound_call_id().startswith("call-outbound-")
    assert new_outbound_call_id() != new_outbound_call_id()
    inbound = new_inbound_call_id("+31623731537")
    assert inbound.startswith("call-_+31623731537_")
    assert inbound[len("call-_+31623731537_") :].isalnum()
    assert new_inbound_call_id("+31&x").startswith("call-_unknown_")


def test_cursor_roundtrip_and_rejects_garbage() -> None:
    after = CallCursor(datetime(2025, 12, 13, 10, 0, 0, 123456, tzinfo=UTC), 1234)
    assert decode_cursor(encode_cursor(after)) == after
    assert decode_cursor("") is None  # cursor= : the first page
    one = encode_cursor(CallCursor(T0, 1))
    assert one == "1765620000000000.1"  # µs since the epoch . seq: the documented pattern
    # a seq alone, a negative time, a time past year 9999, base64 of a cursor
    for bad in ("!!", one + "*", "-1.1", "1234", "99999999999999999.1", "MTIzNA.1", " 1.1"):
        with pytest.raises(BadRequest):
            decode_cursor(bad)


def test_iso_timestamps_are_utc_with_z() -> None:
    assert iso(T0) == "2025-12-13T10:00:00.000Z"
    assert iso(datetime(2025, 1, 1, 12, tzinfo=UTC).astimezone()) == "2025-01-01T12:00:00.000Z"
    assert iso(None) is None


def test_parse_json_rejects_duplicates_and_constants() -> None:
    assert parse_json(b'{"a": 1}') == {"a": 1}
    for raw in (b'{"a":1,"a":2}', b"[Infinity]", b"\xc3"):
        with pytest.raises(BadRequest):
            parse_json(raw)
