"""FreeswitchPbx outbound calls against the in-process fake FreeSWITCH (loopback, port 0)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest

from pbx.freeswitch.fake_freeswitch import FakeFreeswitch, PbxEventRecorder
from voicedock.calls.transfers.agent import AgentDialogue
from voicedock.config import FreeswitchSettings, FreeswitchTransferSettings
from voicedock.domain.ids import new_outbound_call_id
from voicedock.errors import ConfigError, PbxError
from voicedock.pbx.base import OriginateRequest, PbxEventKind, TransferTarget
from voicedock.pbx.causes import CallError, error_for_unanswered
from voicedock.pbx.freeswitch import originate as freeswitch_originate
from voicedock.pbx.freeswitch.commands import UnsafeCommandValue
from voicedock.pbx.freeswitch.esl.errors import EslDefaultPassword
from voicedock.pbx.freeswitch.esl.settings import EslSettings
from voicedock.pbx.freeswitch.pbx import PBX_EVENTS, FreeswitchPbx

pytestmark = pytest.mark.unit

PASSWORD = "fake-esl-secret"


async def quick_voice(text: str) -> tuple[bytes, int]:
    """The warm briefing's voice in tests: 0.2 s of a 440 Hz tone at 16 kHz (no TTS models)."""
    t = np.arange(3200) / 16000
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes(), 16000


def make_pbx(
    fs: FakeFreeswitch, *, warm_transfer_timeout: int = 30, **kwargs: object
) -> FreeswitchPbx:
    settings = FreeswitchSettings(
        esl_port=fs.port,
        esl_password=PASSWORD,
        media_port=0,
        transfer=FreeswitchTransferSettings(timeout_seconds=warm_transfer_timeout),
    )
    kwargs.setdefault("warm_dialogue", AgentDialogue(synthesize=quick_voice))
    esl = EslSettings(
        host="127.0.0.1",
        port=fs.port,
        password=PASSWORD,
        events=PBX_EVENTS,
        keepalive_interval=30.0,
        backoff_initial=0.02,
        backoff_max=0.1,
        command_timeout=2.0,
    )
    return FreeswitchPbx(settings, esl_settings=esl, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeswitch]:
    async with FakeFreeswitch(password=PASSWORD) as fs:
        yield fs


@pytest.fixture
async def started(fake: FakeFreeswitch) -> AsyncIterator[tuple[FreeswitchPbx, PbxEventRecorder]]:
    recorder = PbxEventRecorder()
    pbx = make_pbx(fake)
    await pbx.start(recorder)
    try:
        yield pbx, recorder
    finally:
        await pbx.aclose()


def request(destination: str = "+15551234567", **overrides: object) -> OriginateRequest:
    values: dict[str, object] = {
        "call_id": new_outbound_call_id(),  # the engine's own ids, never a uuid
        "destination": destination,
        "caller_id": "+15557654321",
        "trunk_endpoint": "carrier1",
        "timeout_seconds": 30,
    }
    values.update(overrides)
    return OriginateRequest(**values)  # type: ignore[arg-type]


def originates(fs: FakeFreeswitch) -> list[str]:
    return [c for c in fs.commands if c.startswith("bgapi originate")]


async def test_originate_answer_and_hangup_cause_16(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call = request()
    await pbx.originate(call)
    await events.wait_for(call.call_id, PbxEventKind.ANSWERED)
    channel = fake.uuid_of(call.call_id)
    assert channel == str(uuid.UUID(channel))  # our own uuid4 per leg, not the call id
    assert originates(fake) == [
        "bgapi originate {origination_uuid="
        + channel
        + ",origination_caller_id_number=+15557654321,voicedock_call_id="
        + call.call_id
        + ",originate_timeout=30,send_silence_when_idle=-1}"
        + "sofia/gateway/carrier1/+15551234567 &park()"
    ]
    assert call.call_id in await pbx.live_call_ids()

    await pbx.hangup(call.call_id)
    hangup = await events.wait_for(call.call_id, PbxEventKind.HANGUP)
    assert hangup.cause == 16
    assert events.kinds(call.call_id) == [
        PbxEventKind.RINGING,
        PbxEventKind.ANSWERED,
        PbxEventKind.HANGUP,
    ]
    assert f"api uuid_kill {channel} NORMAL_CLEARING" in fake.commands
    await pbx.hangup(call.call_id)  # idempotent: already gone, no error
    assert call.call_id not in await pbx.live_call_ids()


async def test_hangup_reason_maps_to_cause_and_unknown_call_is_quiet(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call = request()
    await pbx.originate(call)
    await events.wait_for(call.call_id, PbxEventKind.ANSWERED)
    await pbx.hangup(call.call_id, "rejected")
    hangup = await events.wait_for(call.call_id, PbxEventKind.HANGUP)
    assert hangup.cause == 21
    before = list(fake.commands)
    await pbx.hangup(new_outbound_call_id())  # not a call of ours: nothing to name, no traffic
    await pbx.hangup(str(uuid.uuid4()))  # a uuid is no call id: never sent as one
    await pbx.hangup("not-a-uuid")
    assert fake.commands == before


async def test_hangup_of_a_ringing_call_kills_the_leg(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    fake.ringing.add("+15551234567")
    call = request()
    await pbx.originate(call)
    await events.wait_for(call.call_id, PbxEventKind.RINGING)
    channel = fake.uuid_of(call.call_id)
    await pbx.hangup(call.call_id)
    assert f"api uuid_kill {channel} NORMAL_CLEARING" in fake.commands
    hangup = await events.wait_for(call.call_id, PbxEventKind.HANGUP)
    assert hangup.cause == 16
    assert channel not in fake.channels
    assert PbxEventKind.ANSWERED not in events.kinds(call.call_id)


async def test_hangup_before_the_channel_exists_kills_it_when_it_shows_up(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    """``bgapi`` returns before FreeSWITCH creates the channel: a cancel in that window."""
    pbx, events = started
    fake.ringing.add("+15551234567")
    fake.create_delay = 0.2
    call = request()
    await pbx.originate(call)
    await pbx.hangup(call.call_id)  # -ERR No such channel!: not created yet
    await events.wait_for(call.call_id, PbxEventKind.HANGUP)
    channel = fake.uuid_of(call.call_id)
    assert [c for c in fake.commands if "uuid_kill" in c] == [
        f"api uuid_kill {channel} NORMAL_CLEARING"
    ] * 2
    assert channel not in fake.channels
    assert PbxEventKind.ANSWERED not in events.kinds(call.call_id)


async def test_remote_hangup_reports_cause_and_sip_status(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call = request()
    await pbx.originate(call)
    await events.wait_for(call.call_id, PbxEventKind.ANSWERED)
    fake.press_digit(fake.uuid_of(call.call_id), "5")
    dtmf = await events.wait_for(call.call_id, PbxEventKind.DTMF)
    assert dtmf.digit == "5"
    fake.remote_hangup(fake.uuid_of(call.call_id))
    hangup = await events.wait_for(call.call_id, PbxEventKind.HANGUP)
    assert (hangup.cause, hangup.tech_cause) == (16, 200)


@pytest.mark.parametrize(
    ("outcome", "cause", "sip", "error"),
    [
        ("busy", 17, 486, CallError.BUSY),
        ("no_answer", 19, 480, CallError.NO_ANSWER),
        ("congestion", 41, 503, CallError.CONGESTION),
        ("rejected", 21, 403, CallError.REJECTED),
        ("unallocated", 1, 404, CallError.INVALID_NUMBER),
    ],
)
async def test_failed_destination_maps_to_call_error(
    fake: FakeFreeswitch,
    started: tuple[FreeswitchPbx, PbxEventRecorder],
    outcome: str,
    cause: int,
    sip: int,
    error: CallError,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(freeswitch_originate, "_ORIGINATE_FAILURE_GRACE", 0.05)
    pbx, events = started
    fake.destinations["+15550000001"] = outcome
    call = request("+15550000001")
    await pbx.originate(call)
    hangup = await events.wait_for(call.call_id, PbxEventKind.HANGUP)
    assert (hangup.cause, hangup.tech_cause) == (cause, sip)
    assert error_for_unanswered(hangup.cause, hangup.tech_cause) is error
    assert PbxEventKind.ANSWERED not in events.kinds(call.call_id)
    await asyncio.sleep(0.15)  # the job's -ERR arrives too: still one HANGUP only
    assert events.kinds(call.call_id).count(PbxEventKind.HANGUP) == 1


async def test_originate_failure_without_channel_events_uses_job_result(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    fake.down_gateways.add("carrier1")
    call = request()
    await pbx.originate(call)
    hangup = await events.wait_for(call.call_id, PbxEventKind.HANGUP)
    assert hangup.detail == "originate-failed GATEWAY_DOWN"
    # An unregistered or failed gateway is a trunk that cannot be reached, as on Asterisk.
    assert error_for_unanswered(hangup.cause, hangup.tech_cause) is CallError.UNREACHABLE
    assert events.kinds(call.call_id) == [PbxEventKind.HANGUP]


@pytest.mark.parametrize(
    "overrides",
    [
        {"destination": "+1555123\n\nbgapi system rm -rf /"},
        {"destination": "+15551234567,origination_uuid=x"},
        {"destination": "+1555${system(id)}"},
        {"destination": "+15551234567|sofia/gateway/other/+15550000000"},
        {"destination": "+１５５５１２３４５６７"},
        {"caller_id": "+15557654321}&bridge(user/1000)"},
        {"trunk_endpoint": "carrier1/+15550000000 &bridge(x)"},
        {"call_id": "not-a-call-id"},
        {"call_id": "0b9f3c52-5d6e-4b8a-9c1d-2e3f4a5b6c7d"},  # a uuid is no call id
        {"call_id": "call-outbound-abcdefgh12345678,origination_uuid=x"},
        {"call_id": "call-_+31612345678_abcdefABCDEF}&bridge(x)"},
        {"call_id": "call-outbound-${system(id)}"},
    ],
)
async def test_injection_refused_before_any_esl_traffic(
    fake: FakeFreeswitch,
    started: tuple[FreeswitchPbx, PbxEventRecorder],
    overrides: dict[str, str],
) -> None:
    pbx, _events = started
    before = list(fake.commands)
    with pytest.raises(UnsafeCommandValue):
        await pbx.originate(request(**overrides))
    assert fake.commands == before


async def test_duplicate_call_id_refused(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call = request()
    await pbx.originate(call)
    with pytest.raises(PbxError, match="already in progress"):
        await pbx.originate(call)
    await events.wait_for(call.call_id, PbxEventKind.ANSWERED)
    assert len(originates(fake)) == 1


async def test_default_password_refused(fake: FakeFreeswitch) -> None:
    with pytest.raises(EslDefaultPassword) as info:
        FreeswitchPbx(FreeswitchSettings(esl_port=fake.port, esl_password="ClueCon"))
    assert isinstance(info.value, ConfigError)
    assert fake.connections_accepted == 0
    allowed = FreeswitchSettings(
        esl_port=fake.port, esl_password="ClueCon", allow_default_password=True
    )
    FreeswitchPbx(allowed)  # explicitly allowed (tests only): constructs


async def test_blind_transfer_uses_transfer_extension(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call = request()
    await pbx.originate(call)
    await events.wait_for(call.call_id, PbxEventKind.ANSWERED)
    await pbx.transfer(call.call_id, TransferTarget("+15559990000", trunk_endpoint="carrier2"))
    await events.wait_for(call.call_id, PbxEventKind.TRANSFERRED)
    channel = fake.uuid_of(call.call_id)
    assert f"api uuid_setvar {channel} voicedock_transfer_gateway carrier2" in fake.commands
    assert f"api uuid_transfer {channel} +15559990000 XML voicedock_transfer" in fake.commands
    kills = len([c for c in fake.commands if "uuid_kill" in c])
    await pbx.hangup(call.call_id)  # the caller belongs to the transfer target now
    assert len([c for c in fake.commands if "uuid_kill" in c]) == kills
    before = list(fake.commands)
    with pytest.raises(UnsafeCommandValue):
        await pbx.transfer(call.call_id, TransferTarget("1000 XML default"))
    with pytest.raises(UnsafeCommandValue):
        await pbx.transfer(
            call.call_id, TransferTarget("+15559990000", trunk_endpoint="gw ${system(id)}")
        )
    assert fake.commands == before
    with pytest.raises(PbxError, match="no live call"):
        await pbx.transfer(new_outbound_call_id(), TransferTarget("+15559990000"))


async def test_transfer_failure_is_reported(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call = request()
    await pbx.originate(call)
    await events.wait_for(call.call_id, PbxEventKind.ANSWERED)
    fake.channels.pop(fake.uuid_of(call.call_id))  # gone on the PBX, event not yet delivered
    with pytest.raises(PbxError):
        await pbx.transfer(call.call_id, TransferTarget("+15559990000"))
    failed = await events.wait_for(call.call_id, PbxEventKind.TRANSFER_FAILED)
    assert "No such channel" in failed.detail


async def test_aclose_is_idempotent(fake: FakeFreeswitch) -> None:
    pbx = make_pbx(fake)
    await pbx.start(PbxEventRecorder())
    await pbx.aclose()
    await pbx.aclose()
    with pytest.raises(PbxError):
        await pbx.start(PbxEventRecorder())
