"""The operator's own services are never a tenant's URL, however they are named: the PBX's
control ports (ARI, AMI, ESL), voicedock's own listeners (its API, the FreeSWITCH audio-stream
server) and its PostgreSQL database are refused by address *and* by the host name the operator
configured (a compose file's ``asterisk``, ``postgres``), even where the operator allows
private networks or loopback. IPv6 site-local ``fec0::/10`` is a private range.

A loopback server stands in for ARI (it counts what reaches it); names resolve as a compose
network would (the guard's resolver, or the process's for the real app).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api.conftest import Api, serving
from fakes.local_server import LocalServer
from fakes.world import make_settings
from pg_server import fresh_database
from voicedock.config import Settings
from voicedock.egress import Egress, EgressPolicy, NamedTarget, check_url
from voicedock.egress.guard import BLOCKED, address_refusal
from voicedock.egress.settings import egress_policy
from voicedock.errors import UnsafeUrl

pytestmark = pytest.mark.unit

# What the compose network's DNS answers (docker/compose.yaml names these hosts).
COMPOSE = {"asterisk": "127.0.0.1", "postgres": "127.0.0.1", "localhost": "127.0.0.1"}


async def compose_dns(host: str, port: int) -> list[str]:
    if host not in COMPOSE:
        raise UnsafeUrl(host, "host does not resolve")
    return [COMPOSE[host]]


@pytest.fixture
async def ari() -> AsyncIterator[LocalServer]:
    """Stands in for Asterisk's ARI/HTTP server: nothing may reach it from a tenant's URL."""
    server = LocalServer()
    server.route("*", "/{tail:.*}")
    async with server:
        yield server


def compose_settings(tmp_path: Path, ari: LocalServer) -> Settings:
    """Asterisk named by its compose host, private networks (here: this host) allowed, as an
    operator with an internal CRM or a local model would."""
    settings = make_settings(f"sqlite:///{tmp_path / 'services.db'}")
    settings.pbx.asterisk.ari_url = f"http://asterisk:{ari.port}/ari"
    settings.pbx.asterisk.ami_host = "asterisk"
    settings.egress.allowed_networks = ["127.0.0.1/32"]
    return settings


def test_the_block_list_is_the_operators_configuration() -> None:
    settings = make_settings("postgresql://voicedock:pw@postgres:5432/voicedock")
    settings.pbx.asterisk.ari_url = "http://asterisk:8088/ari"
    settings.pbx.asterisk.ami_host = "asterisk"
    settings.pbx.freeswitch.esl_host = "freeswitch"
    settings.pbx.freeswitch.media_host = "0.0.0.0"  # where it listens
    settings.pbx.freeswitch.media_port = 9091
    settings.pbx.freeswitch.media_public_url = "wss://media.voicedock.internal:9443"
    policy = egress_policy(settings)
    assert set(policy.blocked_names) == {
        NamedTarget("asterisk", 8088),
        NamedTarget("asterisk", 5038),
        NamedTarget("freeswitch", 8021),
        NamedTarget("media.voicedock.internal", 9443),
        NamedTarget("postgres", 5432),
    }
    loopback = ipaddress.ip_address("127.0.0.1")
    assert address_refusal(loopback, 9091, policy) == BLOCKED  # the audio-stream server
    assert address_refusal(loopback, 9092, policy) == "loopback address"


def test_every_asterisk_server_and_postgres_host_is_blocked() -> None:
    settings = make_settings("postgresql://u:pw@10.0.0.7:6432,db2.internal/voicedock")
    settings.pbx.asterisk.servers = [
        type(settings.pbx.asterisk)(name="a", ari_url="http://10.0.0.1:8088/ari", ami_host="pbx-b")
    ]
    policy = egress_policy(settings)
    ten = ipaddress.ip_address
    assert address_refusal(ten("10.0.0.7"), 6432, policy) == BLOCKED
    assert address_refusal(ten("10.0.0.1"), 8088, policy) == BLOCKED
    assert NamedTarget("db2.internal", 5432) in policy.blocked_names
    assert NamedTarget("pbx-b", 5038) in policy.blocked_names


async def test_a_name_leading_to_the_pbx_is_refused_at_connection(
    tmp_path: Path, ari: LocalServer
) -> None:
    guard = Egress(egress_policy(compose_settings(tmp_path, ari)), compose_dns)
    async with guard.session() as session:
        for url in (
            f"http://localhost:{ari.port}/ari/channels",  # another name of its address
            f"http://127.0.0.1:{ari.port}/ari/channels",  # its address
            f"http://[::ffff:127.0.0.1]:{ari.port}/ari/channels",
            f"http://asterisk:{ari.port}/ari/channels",  # the operator's name
        ):
            with pytest.raises(UnsafeUrl, match="PBX"):
                await session.get(url)
    assert ari.requests == []
    # Another port of the same host is only a question of the allowed networks.
    other = LocalServer()
    other.route("*", "/{tail:.*}")
    async with (
        other,
        guard.session() as session,
        session.get(f"http://localhost:{other.port}/hook") as response,
    ):
        assert response.status == 200
    assert len(other.requests) == 1


async def test_a_name_that_does_not_resolve_refuses_its_port_only() -> None:
    policy = EgressPolicy(allow_loopback=True, blocked_names=(NamedTarget("gone", 5038),))
    with pytest.raises(UnsafeUrl, match="PBX"):
        await check_url("http://127.0.0.1:5038/", policy, compose_dns)
    assert (await check_url("http://127.0.0.1:5039/", policy, compose_dns)).port == 5039


@pytest.mark.parametrize(
    "policy",
    [EgressPolicy(), EgressPolicy(allow_loopback=True)],
    ids=["production", "loopback-allowed"],
)
async def test_site_local_ipv6_is_a_private_range(policy: EgressPolicy) -> None:
    async def dns(host: str, port: int) -> list[str]:
        return ["fec0::1"]

    for url in ("http://[fec0::1]/hook", "http://[feff:ffff::1]:8443/", "http://site.example/"):
        with pytest.raises(UnsafeUrl, match="private address"):
            await check_url(url, policy, dns)
    allowed = EgressPolicy(allow_private=True)
    assert (await check_url("http://[fec0::1]/hook", allowed, dns)).port == 80


# -- through REST: the real app, as the operator runs it --------------------------------------


@pytest.fixture
def process_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process resolves the compose names (no hosts file): the app's guard and clients
    use the system's resolver."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real(COMPOSE.get(host, host) if isinstance(host, str) else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


async def post(api: Api, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = await api.client.post(path, json=body, headers=api.auth())
    return resp.status, await resp.json()


async def test_webhooks_and_tools_never_reach_the_pbx_by_name(
    tmp_path: Path, ari: LocalServer, process_dns: None
) -> None:
    async with serving(compose_settings(tmp_path, ari)) as api:
        for url in (
            f"http://localhost:{ari.port}/ari/channels?endpoint=PJSIP/premium",
            f"http://127.0.0.1:{ari.port}/ari/channels",
            "http://127.0.0.1:5038/",  # AMI
        ):
            status, body = await post(api, "/webhooks", {"url": url})
            assert status == 400, (url, body)
            assert body["error"] == "Webhook URL refused"
            assert BLOCKED in body["message"], body
        tool = {"type": "webhook", "name": "crm", "server": {"url": f"http://asterisk:{ari.port}/"}}
        status, body = await post(api, "/tool-templates", tool)
        assert status == 400, body
        assert body["message"] == f"body.server.url: {BLOCKED}"
        # The operator's allowed network still serves its other ports.
        status, body = await post(api, "/webhooks", {"url": "http://localhost:9/crm"})
        assert status == 201, body
        status, body = await post(api, "/webhooks", {"url": "http://[fec0::1]/hook"})
        assert status == 400, body
        assert "private address" in body["message"]
    assert ari.requests == []


@pytest.mark.postgres
async def test_the_database_is_never_a_webhook(postgres_server: str, tmp_path: Path) -> None:
    settings = make_settings(await fresh_database(postgres_server))
    settings.egress.allow_loopback = True  # as in the lab: every loopback port but the node's
    port = int(settings.database.url.rsplit(":", 1)[1].split("/", 1)[0])
    async with serving(settings) as api:
        for url in (f"http://127.0.0.1:{port}/", f"http://localhost:{port}/"):
            status, body = await post(api, "/webhooks", {"url": url})
            assert status == 400, (url, body)
            assert BLOCKED in body["message"], body
