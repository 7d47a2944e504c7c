"""Each node's ARI application and the live nodes' list published for the inbound dialplan
(``pbx/asterisk/node_apps.py``), and the node that feeds it the live nodes at each renewal."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

from fakes.pbx import FakePbx
from fakes.world import make_settings
from voicedock.errors import ConfigError, PbxError
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.ari.events import AriChannel, channel_from_json
from voicedock.pbx.asterisk.node_apps import (
    NodeAppError,
    NodeApps,
    apps_value,
    node_app,
    waits_unanswered,
)
from voicedock.service import Service, make_pbx

pytestmark = pytest.mark.unit


def test_a_single_node_keeps_the_application_several_nodes_each_their_own() -> None:
    assert node_app("voicedock", "node-1", several_nodes=False) == "voicedock"
    assert node_app("voicedock", "node-1", several_nodes=True) == "voicedock-node-1"
    with pytest.raises(NodeAppError):
        node_app("voice dock", "a", several_nodes=False)
    with pytest.raises(NodeAppError):
        node_app("voicedock", "x" * 80, several_nodes=True)


def test_the_list_is_sorted_unique_and_only_plain_names() -> None:
    assert apps_value(["voicedock-b", "voicedock-a", "voicedock-b"]) == "voicedock-a&voicedock-b"
    for bad in ("a&b", "a,b", "a)", "", "a b"):
        with pytest.raises(NodeAppError):
            apps_value([bad])


def test_the_database_decides_and_a_bad_name_is_a_config_error() -> None:
    settings = make_settings()
    settings.node.id = "n1"
    assert NodeApps.of(settings).own == "voicedock"
    settings.database.url = "postgresql://voicedock@127.0.0.1/voicedock"
    apps = NodeApps.of(settings)
    assert (apps.own, apps.value) == ("voicedock-n1", "voicedock-n1")
    apps.set_live_nodes(["n2", "n1", "n0"])
    assert apps.value == "voicedock-n0&voicedock-n1&voicedock-n2"
    apps.set_live_nodes(["n2", "n0"])  # this node drains: the others get its inbound calls
    assert apps.value == "voicedock-n0&voicedock-n2"
    apps.set_live_nodes([])  # no node takes inbound calls: the dialplan's last resort
    assert apps.value == ""
    settings.pbx.asterisk.app = "voice;dock"
    with pytest.raises(ConfigError, match=r"pbx\.asterisk\.app"):
        NodeApps.of(settings)


def test_make_pbx_runs_the_nodes_own_application() -> None:
    settings = make_settings("postgresql://voicedock@127.0.0.1/voicedock")
    settings.node.id = "n1"
    settings.pbx.kind = "asterisk"
    pbx: Any = make_pbx(settings)
    assert pbx.ari.events_url().endswith("/events?app=voicedock-n1")
    assert settings.pbx.asterisk.app == "voicedock"  # the configuration is left as it was


async def test_several_servers_each_run_the_nodes_own_application_and_hear_the_live_nodes() -> None:
    settings = make_settings("postgresql://voicedock@127.0.0.1/voicedock")
    settings.node.id = "n1"
    settings.pbx.kind = "asterisk"
    ams = msgspec.structs.replace(settings.pbx.asterisk, name="ams")
    fra = msgspec.structs.replace(settings.pbx.asterisk, name="fra", app="other")
    settings.pbx.asterisk.servers = [ams, fra]
    pbx: Any = make_pbx(settings)
    servers = pbx.servers
    assert servers["ams"].ari.events_url().endswith("/events?app=voicedock-n1")
    assert servers["fra"].ari.events_url().endswith("/events?app=other-n1")
    await pbx.set_live_nodes(["n1", "n2"])  # not connected: kept for the connect
    assert servers["ams"]._node_apps.value == "voicedock-n1&voicedock-n2"
    assert servers["fra"]._node_apps.value == "other-n1&other-n2"


class StubAri:
    def __init__(self, *, registered: bool = True, fails: bool = False) -> None:
        self.registered = registered
        self.fails = fails
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    async def request(self, method: str, path: str, *, params: dict[str, str]) -> None:
        if self.fails:
            raise PbxError("refused")
        self.requests.append((method, path, params))


async def test_published_only_while_registered_and_a_failure_is_not_raised() -> None:
    apps = NodeApps("voicedock", "a", several_nodes=True)
    apps.set_live_nodes(["a", "b"])
    up = StubAri()
    assert await apps.publish(cast(AriClient, up))
    assert up.requests == [
        (
            "POST",
            "/asterisk/variable",
            {"variable": "VOICEDOCK_APPS", "value": "voicedock-a&voicedock-b"},
        )
    ]
    assert not await apps.publish(cast(AriClient, StubAri(registered=False)))
    assert not await apps.publish(cast(AriClient, StubAri(fails=True)))


class ListeningPbx(FakePbx):
    """A PBX that hears which nodes live, as the Asterisk adapter does."""

    def __init__(self) -> None:
        super().__init__()
        self.live: list[list[str]] = []

    async def set_live_nodes(self, node_ids: list[str], draining: Collection[str] = ()) -> None:
        self.live.append(node_ids)


@pytest.mark.timeout(30)
async def test_the_node_tells_its_pbx_the_live_nodes_at_start_and_each_renewal(
    tmp_path: Path,
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'one.db'}")
    settings.node.id = "solo"
    settings.node.lease_seconds = 3
    pbx = ListeningPbx()
    service = await Service.open(settings, pbx=pbx)
    try:
        assert pbx.live == [["solo"]]  # before the PBX connected
        async with asyncio.timeout(5):
            while len(pbx.live) < 2:
                await asyncio.sleep(0.1)
        assert pbx.live[1] == ["solo"]
    finally:
        await service.aclose()


def channel(
    app: str, *, state: str = "Ring", args: str = "inbound,+31850835037", channel_id: str = ""
) -> AriChannel:
    return parsed(
        {
            "id": channel_id or f"in-{app}-{state}",
            "state": state,
            "dialplan": {
                "context": "voicedock-node",
                "exten": "s",
                "priority": 12,
                "app_name": "Stasis",
                "app_data": f"{app},{args}",
            },
        }
    )


def parsed(raw: dict[str, Any]) -> AriChannel:
    """ARI's channel JSON as the client lists it."""
    found = channel_from_json(raw)
    assert found is not None
    return found


class ChannelsAri(StubAri):
    def __init__(self, channels: list[AriChannel]) -> None:
        super().__init__()
        self.channels = channels
        self.continued: list[tuple[str, str, str]] = []

    async def list_channels(self) -> list[AriChannel]:
        return self.channels

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str) -> None:
        self.continued.append((channel_id, context, extension))


def test_a_waiting_caller_is_an_unanswered_inbound_channel_in_one_of_the_apps() -> None:
    assert waits_unanswered(channel("voicedock-a"), {"voicedock-a"})
    assert not waits_unanswered(channel("voicedock-a", state="Up"), {"voicedock-a"})
    assert not waits_unanswered(channel("voicedock-b"), {"voicedock-a"})
    assert not waits_unanswered(channel("voicedock-a", args="outbound,c1"), {"voicedock-a"})
    assert not waits_unanswered(parsed({"id": "x", "state": "Ring"}), {"voicedock-a"})


async def test_the_first_live_node_hands_back_callers_of_an_application_that_left() -> None:
    waiting = [
        channel("voicedock-a"),
        channel("voicedock-a", state="Up"),  # answered by a: its call is settled as node-lost
        channel("voicedock-b"),  # a live node's caller
    ]
    b = NodeApps("voicedock", "b", several_nodes=True)
    c = NodeApps("voicedock", "c", several_nodes=True)
    for apps in (b, c):
        apps.set_live_nodes(["a", "b", "c"])
        apps.set_live_nodes(["b", "c"])  # a's lease ran out
    ari_b, ari_c = ChannelsAri(waiting), ChannelsAri(waiting)
    assert await c.hand_back_waiting(cast(AriClient, ari_c)) == 0  # not the first live node
    assert await b.hand_back_waiting(cast(AriClient, ari_b)) == 1
    assert ari_b.continued == [("in-voicedock-a-Ring", "voicedock-node", "s")]
    assert await b.hand_back_waiting(cast(AriClient, ari_b)) == 0  # done once


async def test_a_node_takes_back_only_the_callers_in_its_application_it_does_not_serve() -> None:
    """Started again under the same id, a node hands back the callers an earlier run left
    waiting in its application; not those it accepts (one whose StasisStart arrives during the
    settle delay counts as accepted), not other nodes' nor answered ones."""
    left, arriving, accepted = (channel("voicedock-a", channel_id=i) for i in ("l", "n", "s"))
    waiting = [left, arriving, accepted, channel("voicedock-a", state="Up"), channel("voicedock-b")]
    a = NodeApps("voicedock", "a", several_nodes=True)
    ari = ChannelsAri(waiting)
    serving = {"s"}

    def served() -> set[str]:
        result = set(serving)
        serving.add("n")  # its StasisStart arrives after the list
        return result

    assert await a.take_back_own(cast(AriClient, ari), served, settle_s=0) == 1
    assert ari.continued == [("l", "voicedock-node", "s")]
    ari.registered = False
    assert await a.take_back_own(cast(AriClient, ari), served, settle_s=0) == 0
