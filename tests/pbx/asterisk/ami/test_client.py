import asyncio

import pytest

from pbx.asterisk.fake_ami import FakeAmi
from voicedock.backoff import Backoff
from voicedock.config import AsteriskSettings
from voicedock.errors import PbxUnavailable
from voicedock.pbx.asterisk.ami.client import AmiClient
from voicedock.pbx.asterisk.ami.messages import AmiValueError, originate_action
from voicedock.pbx.base import OriginateRequest

pytestmark = pytest.mark.unit


def _settings(port: int) -> AsteriskSettings:
    return AsteriskSettings(ami_host="127.0.0.1", ami_port=port, ami_secret="s3cret")


def _originate(call_id: str = "call-outbound-0123456789abcdef") -> dict[str, str | list[str]]:
    request = OriginateRequest(
        call_id=call_id,
        destination="+31612345678",
        caller_id="+31850835037",
        trunk_endpoint="carrier",
        timeout_seconds=30,
    )
    return originate_action(request, app="voicedock")


async def _noop(_event: object) -> None:
    return None


async def _wait_for(predicate, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_originate_pending_at_disconnect_fails_and_is_never_resent():
    fake = await FakeAmi(drop_after_originate_queued=True).start()
    client = AmiClient(_settings(fake.port), ping_interval=0.2, backoff=Backoff(0.01, 0.05))
    try:
        await client.start(_noop)
        await client.wait_connected(5)
        outcome = await client.originate(_originate())
        with pytest.raises(PbxUnavailable):
            await asyncio.wait_for(outcome, 5)
        await _wait_for(lambda: fake.connections >= 2 and client.connected)
        await asyncio.sleep(0.3)  # a FullyBooted after reconnect would trigger re-sending
        assert fake.count("Originate") == 1
        assert fake.count("Login") == 2
    finally:
        await client.aclose()
        await fake.aclose()


async def test_unanswered_ping_forces_a_reconnect():
    fake = await FakeAmi(answer_pings=False).start()
    client = AmiClient(
        _settings(fake.port), ping_interval=0.1, ping_timeout=0.1, backoff=Backoff(0.01, 0.05)
    )
    try:
        await client.start(_noop)
        await client.wait_connected(5)
        await _wait_for(lambda: fake.connections >= 2, within=5)
        assert client.connect_count >= 1
    finally:
        await client.aclose()
        await fake.aclose()


async def test_injection_is_refused_before_any_io():
    fake = await FakeAmi().start()
    client = AmiClient(_settings(fake.port), backoff=Backoff(0.01, 0.05))
    try:
        await client.start(_noop)
        await client.wait_connected(5)
        before = len(fake.actions)
        bad = dict(_originate())
        bad["CallerID"] = "+31850835037\nAction: Hangup"
        with pytest.raises(AmiValueError):
            await client.originate(bad)
        await asyncio.sleep(0.05)
        assert len(fake.actions) == before
    finally:
        await client.aclose()
        await fake.aclose()


async def test_not_connected_raises_unavailable_and_aclose_is_idempotent():
    client = AmiClient(_settings(1), connect_timeout=0.2, backoff=Backoff(0.01, 0.05))
    await client.start(_noop)
    with pytest.raises(PbxUnavailable):
        await client.originate(_originate())
    with pytest.raises(PbxUnavailable):
        await client.wait_connected(0.1)
    await client.aclose()
    await client.aclose()
