"""EslClient against the in-process fake FreeSWITCH (loopback, port 0)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pbx.freeswitch.fake_freeswitch import FakeFreeswitch
from voicedock.errors import ConfigError
from voicedock.pbx.freeswitch.commands import (
    build_originate,
    build_queued_playback,
    build_uuid_kill,
)
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.errors import (
    EslAuthError,
    EslClosed,
    EslCommandError,
    EslConnectionLost,
    EslDefaultPassword,
    EslNotConnected,
)
from voicedock.pbx.freeswitch.esl.settings import EslSettings
from voicedock.pbx.freeswitch.esl.wire import EslEvent
from voicedock.pbx.freeswitch.media.hub import EslPlaybackControl

pytestmark = pytest.mark.unit

PASSWORD = "fake-esl-secret"
UUID = "0b9f3c52-5d6e-4b8a-9c1d-2e3f4a5b6c7d"


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeswitch]:
    async with FakeFreeswitch(password=PASSWORD) as fs:
        yield fs


def settings(fs: FakeFreeswitch, **overrides: object) -> EslSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": fs.port,
        "password": PASSWORD,
        "keepalive_interval": 30.0,
        "backoff_initial": 0.02,
        "backoff_max": 0.1,
        "command_timeout": 2.0,
    }
    values.update(overrides)
    return EslSettings(**values)  # type: ignore[arg-type]


async def next_event(events: AsyncIterator[EslEvent], name: str) -> EslEvent:
    async with asyncio.timeout(2):
        async for event in events:
            if event.name == name:
                return event
    raise AssertionError(f"no {name}")


def originate_cmd(dest: str) -> str:
    return build_originate(
        call_uuid=UUID, destination=dest, caller_id_number="+15557654321", gateway="gw1"
    )


def test_default_password_refused_without_flag() -> None:
    with pytest.raises(EslDefaultPassword) as info:
        EslSettings(host="127.0.0.1", port=8021, password="ClueCon")
    assert isinstance(info.value, ConfigError)
    assert info.value.key == "freeswitch.password"
    assert EslSettings("127.0.0.1", 8021, "ClueCon", allow_default_password=True)


async def test_default_password_allowed_for_tests() -> None:
    async with FakeFreeswitch(password="ClueCon") as fs:
        cfg = settings(fs, password="ClueCon", allow_default_password=True)
        async with EslClient(cfg) as client:
            assert (await client.api("status")).startswith("UP ")


async def test_auth_subscribe_and_api(fake: FakeFreeswitch) -> None:
    async with EslClient(settings(fake)) as client:
        assert client.connected
        assert (await client.api("status")).startswith("UP ")
    assert fake.commands[0] == f"auth {PASSWORD}"
    assert fake.commands[1].startswith("event json CHANNEL_CREATE ")
    assert "BACKGROUND_JOB" in fake.commands[1]
    assert fake.commands[-1] == "exit"


async def test_wrong_password_is_typed_error(fake: FakeFreeswitch) -> None:
    with pytest.raises(EslAuthError):
        await EslClient(settings(fake, password="wrong-one")).start()


async def test_unreachable_is_not_connected() -> None:
    fs = FakeFreeswitch(password=PASSWORD)
    async with fs:
        port = fs.port
    cfg = EslSettings("127.0.0.1", port, PASSWORD, connect_timeout=1)
    with pytest.raises(EslNotConnected):
        await EslClient(cfg).start()


async def test_api_error_raises_command_error(fake: FakeFreeswitch) -> None:
    async with EslClient(settings(fake)) as client:
        with pytest.raises(EslCommandError) as info:
            await client.api(build_uuid_kill(UUID))
        assert info.value.reply == "-ERR No such channel!"


async def test_sendmsg_queues_a_playback_and_refuses_a_gone_channel(fake: FakeFreeswitch) -> None:
    async with EslClient(settings(fake)) as client:
        await (await client.bgapi(originate_cmd("+15551230001"))).result()
        assert await client.sendmsg(*build_queued_playback(UUID, "/tmp/x_0.tmp.r8")) == "+OK"
        assert fake.playbacks == [(UUID, "/tmp/x_0.tmp.r8")]
        await client.api(build_uuid_kill(UUID))
        with pytest.raises(EslCommandError) as info:
            await client.sendmsg(*build_queued_playback(UUID, "/tmp/x_1.tmp.r8"))
        assert info.value.reply.startswith("-ERR invalid session id")


async def test_bgapi_originate_answer_correlates_job_and_events(fake: FakeFreeswitch) -> None:
    async with EslClient(settings(fake)) as client, client.subscribe() as events:
        job = await client.bgapi(originate_cmd("+15551230001"))
        assert fake.commands[-1].startswith("bgapi originate {origination_uuid=")
        assert (await job.result()) == f"+OK {UUID}\n"
        create = await next_event(events, "CHANNEL_CREATE")
        assert create.unique_id == UUID
        await next_event(events, "CHANNEL_PROGRESS")
        await next_event(events, "CHANNEL_ANSWER")
        done = await next_event(events, "BACKGROUND_JOB")
        assert done.job_uuid == job.job_uuid
        assert [c.uuid for c in await client.show_channels()] == [UUID]
        assert await client.api(build_uuid_kill(UUID)) == "+OK\n"
        hangup = await next_event(events, "CHANNEL_HANGUP_COMPLETE")
        assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"
        assert await client.show_channels() == []


@pytest.mark.parametrize(
    ("outcome", "cause", "sip"),
    [
        ("busy", "USER_BUSY", "486"),
        ("no_answer", "NO_ANSWER", "480"),
        ("congestion", "NORMAL_TEMPORARY_FAILURE", "503"),
        ("rejected", "CALL_REJECTED", "403"),
        ("unallocated", "UNALLOCATED_NUMBER", "404"),
    ],
)
async def test_bgapi_originate_failures(
    fake: FakeFreeswitch, outcome: str, cause: str, sip: str
) -> None:
    fake.destinations["+15551230002"] = outcome
    async with EslClient(settings(fake)) as client, client.subscribe() as events:
        job = await client.bgapi(originate_cmd("+15551230002"))
        with pytest.raises(EslCommandError) as info:
            await job.result()
        assert info.value.reply == f"-ERR {cause}"
        hangup = await next_event(events, "CHANNEL_HANGUP_COMPLETE")
        assert hangup.get("Hangup-Cause") == cause
        assert hangup.get("variable_sip_term_status") == sip


async def test_reconnect_fails_pending_job_and_runs_hook(fake: FakeFreeswitch) -> None:
    fake.ring_delay = 5.0  # the originate is still ringing when the socket drops
    reconciled = asyncio.Event()
    seen: list[list[str]] = []

    async def reconcile(client: EslClient) -> None:
        seen.append([c.uuid for c in await client.show_channels()])
        reconciled.set()

    async with EslClient(settings(fake), on_reconnect=reconcile) as client:
        job = await client.bgapi(originate_cmd("+15551230003"))
        fake.drop_connections()
        with pytest.raises(EslConnectionLost):
            await job.result()
        async with asyncio.timeout(3):
            await reconciled.wait()
        assert client.reconnects == 1
        assert seen == [[UUID]]  # the call still exists: reconcile, never re-send
        originates = [c for c in fake.commands if c.startswith("bgapi originate")]
        assert len(originates) == 1
        assert (await client.api("status")).startswith("UP")


async def test_commands_while_disconnected_are_not_queued(fake: FakeFreeswitch) -> None:
    async with EslClient(settings(fake, backoff_initial=1.0, backoff_max=1.0)) as client:
        await fake.aclose()  # FreeSWITCH is gone for good
        async with asyncio.timeout(2):
            while client.connected:
                await asyncio.sleep(0.01)
        with pytest.raises(EslNotConnected):
            await client.api("status")


async def test_disconnect_notice_triggers_reconnect(fake: FakeFreeswitch) -> None:
    async with EslClient(settings(fake)) as client:
        fake.send_disconnect_notice()
        async with asyncio.timeout(3):
            while client.reconnects < 1 or not client.connected:
                await asyncio.sleep(0.01)
        assert fake.connections_accepted == 2
        assert (await client.api("status")).startswith("UP")


async def test_keepalive_detects_half_open_socket(fake: FakeFreeswitch) -> None:
    cfg = settings(fake, keepalive_interval=0.05, keepalive_timeout=0.1, connect_timeout=0.3)
    async with EslClient(cfg) as client:
        await asyncio.sleep(0.12)
        assert fake.commands.count("api status") >= 1  # keepalive replies are checked
        fake.frozen = True  # socket open, nothing answers
        async with asyncio.timeout(3):
            while fake.connections_accepted < 2:
                await asyncio.sleep(0.01)
        fake.frozen = False
        async with asyncio.timeout(3):
            while client.reconnects < 1:
                await asyncio.sleep(0.01)
        assert (await client.api("status")).startswith("UP")


async def test_api_originate_blocks_and_returns_uuid(fake: FakeFreeswitch) -> None:
    async with EslClient(settings(fake)) as client:
        assert await client.api(originate_cmd("+15551230004")) == f"+OK {UUID}\n"


async def test_aclose_is_idempotent_and_ends_subscriptions(fake: FakeFreeswitch) -> None:
    client = EslClient(settings(fake))
    await client.start()
    events = client.subscribe()
    await client.aclose()
    await client.aclose()
    assert [e async for e in events] == []
    with pytest.raises(EslClosed):
        await client.api("status")
    with pytest.raises(EslClosed):
        client.subscribe()


async def test_stopping_the_stream_of_a_gone_channel_is_quiet(fake: FakeFreeswitch) -> None:
    """mod_audio_stream answers ``-ERR Operation Failed`` for a channel that is gone (the lab
    FreeSWITCH): stopping its stream is then nothing to do, not an error."""
    gone = "0b0e7a52-4c1e-4b9e-9d7a-2f4f1c9f0c11"
    async with EslClient(settings(fake)) as client:
        with pytest.raises(EslCommandError, match="Operation Failed"):
            await client.api(f"uuid_audio_stream {gone} stop")
        await EslPlaybackControl(client, gone).stop_stream()
        with pytest.raises(EslCommandError, match="invalid uuid"):
            await client.api(f"uuid_broadcast {gone} /tmp/x.wav aleg")
