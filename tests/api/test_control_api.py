"""POST /calls/{id}/control: commands, validation, and the in-progress rule."""

from __future__ import annotations

from typing import Any

import pytest

from api.conftest import Api
from api.contract import is_valid
from api.test_calls_api import place
from voicedock.calls.control import TRANSFER_FAILED_MESSAGE
from voicedock.errors import PbxError
from voicedock.pbx.base import PbxEventKind, TransferTarget

pytestmark = pytest.mark.unit

OK = {"success": True, "message": "Command sent successfully"}


class RecordingLiveCall:
    def __init__(self) -> None:
        self.said: list[str] = []
        self.injected: list[tuple[str, bool]] = []
        self.sources: list[str] = []
        self.ended: list[str | None] = []
        self.transfers: list[TransferTarget] = []

    async def say(self, content: str) -> None:
        self.said.append(content)

    async def inject_context(
        self, content: str, trigger_response: bool, source: str = "api"
    ) -> None:
        self.injected.append((content, trigger_response))
        self.sources.append(source)

    async def end_call(self, message: str | None) -> None:
        self.ended.append(message)

    async def transfer(
        self, target: TransferTarget, announcement: str | None, summary: str | None
    ) -> None:
        self.transfers.append(target)


async def control(api: Api, call_id: str, body: Any, key: str | None = None) -> Any:
    return await api.client.post(f"/calls/{call_id}/control", json=body, headers=api.auth(key))


async def active_call(api: Api) -> str:
    call_id = await place(api)
    await api.pbx.answer(call_id)
    return call_id


async def test_commands_without_live_conversation(api: Api) -> None:
    call_id = await active_call(api)
    for body in (
        {"type": "inject-context", "content": "Verified: John", "trigger_response": True},
        {"type": "say", "content": "One moment please"},
    ):
        resp = await control(api, call_id, body)
        assert resp.status == 200
        assert await resp.json() == OK
    events = await api.service.store.list_events(call_id)
    kinds = [e.data["type"] for e in events if e.type == "control"]
    assert kinds == ["inject-context", "say"]
    resp = await control(api, call_id, {"type": "end-call", "message": "Bye"})
    assert await resp.json() == OK
    assert api.pbx.hangups == [(call_id, "normal")]
    await api.pbx.hang_up_remote(call_id)
    detail = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    assert detail["status"] == "ended"
    assert detail["end_reason"] == "api-end-call"


async def test_commands_reach_live_conversation(api: Api) -> None:
    call_id = await active_call(api)
    live = RecordingLiveCall()
    api.service.engine.records.attach(call_id, live)
    await control(api, call_id, {"type": "say", "content": "Hello"})
    await control(api, call_id, {"type": "inject-context", "content": "code 1234"})
    whisper = {"type": "inject-context", "content": "Offer 10%", "source": "supervisor"}
    await control(api, call_id, whisper)
    await control(api, call_id, {"type": "transfer", "destination": "sales", "mode": "warm"})
    await control(api, call_id, {"type": "end-call"})
    assert live.said == ["Hello"]
    assert live.injected == [("code 1234", False), ("Offer 10%", False)]
    assert live.sources == ["api", "supervisor"]
    stored = [e.data for e in await api.service.store.list_events(call_id) if e.type == "control"]
    injected = [d for d in stored if d["type"] == "inject-context"]
    assert "source" not in injected[0]  # the default is stored as before
    assert injected[1]["source"] == "supervisor"
    assert [(t.destination, t.internal, t.mode) for t in live.transfers] == [
        ("sales", True, "warm")
    ]
    assert live.ended == [None]
    assert api.pbx.hangups == []  # the conversation hangs up after its final words


async def test_transfer_to_e164_goes_to_pbx(api: Api) -> None:
    call_id = await active_call(api)
    resp = await control(
        api, call_id, {"type": "transfer", "destination": "+31201234567", "announcement": "Hold"}
    )
    assert resp.status == 200
    ((sent_id, target),) = api.pbx.transfers
    assert sent_id == call_id
    assert target.destination == "+31201234567"
    assert target.trunk_endpoint == "carrier-ep"
    await api.pbx.emit(call_id, PbxEventKind.TRANSFERRED)
    detail = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    assert detail["status"] == "ended"
    assert detail["end_reason"] == "transferred"
    assert detail["transferred_to"] == "+31201234567"
    assert detail["transferred_at"] is not None


@pytest.mark.parametrize(
    "body",
    [
        {"type": "dance"},
        {},
        {"type": "say"},
        {"type": "say", "content": ""},
        {"type": "say", "content": 3},
        {"type": "say", "content": "x", "extra": 1},
        {"type": "inject-context", "content": "x", "trigger_response": "yes"},
        {"type": "inject-context", "content": "x", "source": "boss"},
        {"type": "transfer"},
        {"type": "transfer", "destination": "+31 20 1234567"},
        {"type": "transfer", "destination": "+31201234567&PJSIP/x"},
        {"type": "transfer", "destination": "sales&PJSIP/x"},
        {"type": "transfer", "destination": "+9009011234567"},  # no such number in Turkey
        {"type": "transfer", "destination": "+31201234567", "mode": "sideways"},
        {"type": "end-call", "message": "a", "content": "b"},
        ["say"],
    ],
)
async def test_bad_commands_are_400(api: Api, body: Any) -> None:
    call_id = await active_call(api)
    resp = await control(api, call_id, body)
    assert resp.status == 400, await resp.text()
    assert set(await resp.json()) == {"error", "message"}
    assert api.pbx.transfers == []
    assert api.pbx.hangups == []


def test_an_end_call_with_both_messages_breaks_the_schema_too() -> None:
    """The server refuses message and content together; so does the document (it allowed it:
    the fuzzer's check of our own found the two disagreeing)."""
    assert not is_valid({"type": "end-call", "message": "a", "content": "b"}, "ControlCommand")
    for one in ({"message": "a"}, {"content": "b"}, {}):
        assert is_valid({"type": "end-call", **one}, "ControlCommand")


@pytest.mark.parametrize(
    ("destination", "reason", "shown"),
    [
        ("+881612345678", "blocked-prefix", "+881***78"),
        ("+19005550123", "refused-number-type", "+190***23"),
        ("+18762101234", "country-not-allowed", "+187***34"),
        ("not-configured", "internal-not-allowed", "not-configured"),
    ],
)
async def test_refused_transfer_destination_is_403_with_a_security_event(
    api: Api, destination: str, reason: str, shown: str
) -> None:
    call_id = await active_call(api)
    resp = await control(api, call_id, {"type": "transfer", "destination": destination})
    assert resp.status == 403
    assert await resp.json() == {
        "error": "Destination not allowed",
        "message": (await resp.json())["message"],
    }
    assert api.pbx.transfers == []
    events = await api.service.store.list_events(call_id)
    security = [e.data for e in events if e.type == "security"]
    assert security == [
        {"type": "transfer-refused", "reason": reason, "destination": shown, "mode": "blind"}
    ]
    assert not [e for e in events if e.type == "control"]  # nothing was sent anywhere
    detail = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    assert detail["status"] == "in-progress"


async def test_transferred_to_is_set_when_the_pbx_confirms_not_when_accepted(api: Api) -> None:
    call_id = await active_call(api)
    resp = await control(api, call_id, {"type": "transfer", "destination": "+31201234567"})
    assert resp.status == 200
    detail = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    assert (detail["transferred_to"], detail["transferred_at"]) == (None, None)
    await api.pbx.emit(call_id, PbxEventKind.TRANSFER_FAILED, detail="dialstatus=BUSY")
    detail = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    assert (detail["status"], detail["transferred_to"]) == ("in-progress", None)
    await api.pbx.emit(call_id, PbxEventKind.TRANSFERRED, detail="+31201234567")
    detail = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    assert detail["end_reason"] == "transferred"
    assert detail["transferred_to"] == "+31201234567"
    assert detail["transferred_at"] is not None


async def test_not_active_is_409(api: Api) -> None:
    call_id = await place(api)  # still connecting
    resp = await control(api, call_id, {"type": "say", "content": "hi"})
    assert resp.status == 409
    assert (await resp.json())["error"] == "Call not active"
    await api.pbx.answer(call_id)
    await api.pbx.hang_up_remote(call_id)
    resp = await control(api, call_id, {"type": "end-call"})
    assert resp.status == 409
    assert api.pbx.hangups == []


async def test_other_org_and_unknown_call_are_404(api: Api) -> None:
    call_id = await active_call(api)
    resp = await control(api, call_id, {"type": "end-call"}, key=api.globex_key)
    assert resp.status == 404
    resp = await control(api, "call-outbound-nope", {"type": "end-call"})
    assert resp.status == 404
    assert api.pbx.hangups == []


async def test_pbx_failure_is_503(api: Api) -> None:
    call_id = await active_call(api)
    api.pbx.fail_commands = PbxError("gone")
    resp = await control(api, call_id, {"type": "end-call"})
    assert resp.status == 503
    assert (await resp.json())["error"] == "PBX unavailable"


class _NoTransferLiveCall(RecordingLiveCall):
    async def transfer(self, target: Any, announcement: str | None, summary: str | None) -> None:
        raise NotImplementedError("this conversation leaves transfers to the PBX")


async def test_transfer_falls_back_to_pbx_when_conversation_cannot(api: Api) -> None:
    call_id = await active_call(api)
    api.service.engine.records.attach(call_id, _NoTransferLiveCall())
    resp = await control(api, call_id, {"type": "transfer", "destination": "+31201234567"})
    assert resp.status == 200
    assert [(cid, t.destination) for cid, t in api.pbx.transfers] == [(call_id, "+31201234567")]


async def test_failed_transfer_is_announced_by_the_assistant_and_the_call_goes_on(
    api: Api,
) -> None:
    call_id = await active_call(api)
    live = RecordingLiveCall()
    api.service.engine.records.attach(call_id, live)
    body = {"type": "transfer", "destination": "sales", "mode": "warm", "summary": "Invoice 42"}
    assert (await control(api, call_id, body)).status == 200
    ((_, target),) = api.pbx.transfers
    assert target.extra == {"briefing": "Invoice 42"}
    await api.pbx.emit(call_id, PbxEventKind.TRANSFER_FAILED, detail="warm-declined")
    assert live.said == [TRANSFER_FAILED_MESSAGE]
    events = await api.service.store.list_events(call_id)
    assert [e.data for e in events if e.type == "transfer"] == [
        {"result": "failed", "detail": "warm-declined"}
    ]
    detail = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    assert detail["status"] == "in-progress"
