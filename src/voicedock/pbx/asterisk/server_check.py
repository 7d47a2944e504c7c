"""What ``voicedock doctor`` says of each live Asterisk server, over its ARI.

For every server of ``[pbx.asterisk]`` (each of ``[[pbx.asterisk.servers]]``, or the one):

* that ARI answers with the configured user (``GET /asterisk/info``);
* its version, and how a call's audio will travel there (``media/choice``): chan_websocket,
  RTP or AudioSocket, or exactly what is missing and since which Asterisk it exists;
* for RTP and AudioSocket, the address and ports Asterisk will send the audio to, with a
  warning when that address is a loopback one and Asterisk is not on this machine;
* each trunk carried by the server: that its PJSIP endpoint exists, and that the hosts its
  contacts, outbound proxy and registration name resolve (a trunk whose host does not resolve
  fails every call as "congestion"). Asterisk's own configuration is read through ARI's
  dynamic configuration resource (``/asterisk/config/dynamic``, Asterisk 13.5 and later).

``describe`` is the one line per server that both doctor and the node's start-up log print.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from voicedock.config import AsteriskSettings, Settings, TrunkSettings
from voicedock.errors import PbxError
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.asterisk.media.choice import FACTS, TransportChoice, choose_transport
from voicedock.pbx.asterisk.media.transports import public_host
from voicedock.pbx.asterisk.server_info import AsteriskServerInfo

__all__ = ["ServerReport", "check_asterisk_servers", "describe", "sip_host"]

_TIMEOUT = 5.0
_DYNAMIC = "/asterisk/config/dynamic"


@dataclass
class ServerReport:
    """What doctor prints of one server: ``lines`` always, ``problems`` make it fail."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def describe(
    settings: AsteriskSettings, info: AsteriskServerInfo, choice: TransportChoice, public: str
) -> str:
    """One line: the server, its version and how its calls' audio travels (and where)."""
    where = f"asterisk {settings.name}" if settings.name else "asterisk"
    line = f"{where}: {choice.reason}"
    if choice.transport == "rtp":
        line += (
            f"; Asterisk sends RTP to {public}, UDP {settings.rtp_port_min}-"
            f"{settings.rtp_port_max} (voicedock listens on {settings.media_host})"
        )
    elif choice.transport == "audiosocket":
        line += (
            f"; Asterisk connects to {public}:{settings.audiosocket_port} over TCP "
            f"(voicedock listens on {settings.media_host})"
        )
    del info
    return line


async def check_asterisk_servers(settings: Settings) -> list[ServerReport]:
    """One report per configured Asterisk server, in the configured order."""
    asterisk = settings.pbx.asterisk
    servers = asterisk.servers or [asterisk]
    reports = []
    for server in servers:
        trunks = [
            (i, t)
            for i, t in enumerate(settings.trunks)
            if t.pbx == server.name or (not asterisk.servers and not t.pbx)
        ]
        reports.append(await _check_server(server, trunks))
    return reports


async def _check_server(
    server: AsteriskSettings, trunks: list[tuple[int, TrunkSettings]]
) -> ServerReport:
    report = ServerReport()
    named = f"asterisk {server.name}" if server.name else "asterisk"
    ari = AriClient(server, request_timeout=_TIMEOUT)
    try:
        try:
            info = await ari.server_info()
        except AriHttpError as exc:
            reason = (
                "refused the ARI user (pbx.asterisk.ari_user, ari_password; ari.conf)"
                if exc.status in (401, 403)
                else f"answered {exc.status} {exc.message}"
            )
            report.problems.append(f"error: {named}: ARI at {server.ari_url} {reason}")
            return report
        except PbxError as exc:
            report.problems.append(
                f"error: {named}: cannot reach ARI at {server.ari_url} "
                f"(pbx.asterisk.ari_url; http.conf, ari.conf): {exc}"
            )
            return report
        choice = choose_transport(server.media_transport, info)
        public = await _public_host(server)
        if choice.transport is None:
            report.problems.append(f"error: {named}: {choice.reason}")
        else:
            report.lines.append(describe(server, info, choice, public))
            report.problems += _reachable(server, choice, public, named)
        for index, trunk in trunks:
            report.problems += await _trunk_problems(ari, index, trunk, named)
    finally:
        await ari.aclose()
    return report


async def _public_host(server: AsteriskSettings) -> str:
    """The address Asterisk is told to send RTP/AudioSocket to (as ``transports`` says)."""
    try:
        return await public_host(server)
    except (OSError, PbxError) as exc:
        return f"(unknown: {exc})"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _reachable(
    server: AsteriskSettings, choice: TransportChoice, public: str, named: str
) -> list[str]:
    """RTP/AudioSocket: Asterisk on another machine cannot send to a loopback address."""
    if choice.transport not in ("rtp", "audiosocket"):
        return []
    ari_host = urlsplit(server.ari_url).hostname or ""
    if _is_loopback(public) and not _is_loopback(ari_host):
        return [
            f"warning: {named}: Asterisk ({ari_host}) is told to send the calls' "
            f"{FACTS[choice.transport].shown} audio to {public}, a loopback address: set "
            "pbx.asterisk.media_host (or media_public_host) to an address Asterisk reaches"
        ]
    return []


async def _trunk_problems(
    ari: AriClient, index: int, trunk: TrunkSettings, named: str
) -> list[str]:
    endpoint = trunk.endpoint or trunk.name
    label = f"trunks[{index}] ({trunk.name})"
    try:
        fields = await _dynamic(ari, "res_pjsip/endpoint", endpoint)
    except AriHttpError as exc:
        if exc.status == 404:
            return [f"error: {named}: {label}: Asterisk has no PJSIP endpoint {endpoint!r}"]
        return [f"warning: {named}: {label}: cannot read its PJSIP endpoint: {exc}"]
    except PbxError as exc:
        return [f"warning: {named}: {label}: cannot read its PJSIP endpoint: {exc}"]
    uris: list[tuple[str, str]] = []  # (what, uri)
    if proxy := fields.get("outbound_proxy", ""):
        uris.append(("outbound proxy", proxy))
    for aor in _listed(fields.get("aors", "")):
        try:
            aor_fields = await _dynamic(ari, "res_pjsip/aor", aor)
        except PbxError:
            continue
        uris += [("contact", contact) for contact in _listed(aor_fields.get("contact", ""))]
    try:
        registration = await _dynamic(ari, "res_pjsip_outbound_registration/registration", endpoint)
    except PbxError:
        registration = {}
    if server_uri := registration.get("server_uri", ""):
        uris.append(("registration", server_uri))
    problems = []
    for what, uri in uris:
        host = sip_host(uri)
        if host is not None and not await _resolves(host):
            problems.append(
                f"error: {named}: {label}: the host {host!r} of its {what} ({uri}) does not "
                "resolve: every call on the trunk would fail (congestion)"
            )
    return problems


async def _dynamic(ari: AriClient, kind: str, name: str) -> dict[str, str]:
    """An object of Asterisk's configuration, its attributes by name."""
    result = await ari.request("GET", f"{_DYNAMIC}/{kind}/{quote(name, safe='')}")
    fields: dict[str, str] = {}
    for entry in result if isinstance(result, list) else []:
        if isinstance(entry, dict):
            attribute, value = entry.get("attribute"), entry.get("value")
            if isinstance(attribute, str) and isinstance(value, str):
                fields[attribute] = value
    return fields


def _listed(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def sip_host(uri: str) -> str | None:
    """The host of a SIP URI (``sip:user@host:port;params``, ``<sips:[::1]:5061>``); ``None``
    when it names none, or an IP address (nothing to resolve)."""
    text = uri.strip().strip("<>")
    scheme, _, rest = text.partition(":")
    if scheme.lower() not in ("sip", "sips") or not rest:
        return None
    rest = rest.split(";", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if rest.startswith("["):
        return None  # an IPv6 address
    host = rest.split(":", 1)[0]
    if not host:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


async def _resolves(host: str) -> bool:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(_TIMEOUT):
            return bool(await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM))
    except (OSError, TimeoutError):
        return False
