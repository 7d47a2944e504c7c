"""The egress policy of a running service, built from ``Settings`` (``[egress]``, where the
operator's own services listen and the operator's ``[speech]`` URLs)."""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qs

from yarl import URL

from voicedock.config import OLLAMA_BASE_URL, Settings, network_entry
from voicedock.egress.guard import (
    Egress,
    EgressPolicy,
    HostResolver,
    NamedTarget,
    NetworkTarget,
    system_resolver,
)


def egress_policy(settings: Settings) -> EgressPolicy:
    e = settings.egress
    blocked = [_target(entry) for entry in e.blocked_networks]
    blocked_names: list[NamedTarget] = []
    for host, port in operator_services(settings):
        addresses = _literal_addresses(host)
        if addresses is None:
            blocked_names.append(NamedTarget(host.lower(), port))
        else:
            blocked += [NetworkTarget.parse(address, port) for address in addresses]
    hosts = list(e.provider_hosts)
    provider_allowed: list[NetworkTarget] = []
    for url in operator_provider_urls(settings):
        for host, port in _url_place(url):
            host = host.lower()
            # The operator's own server, at the operator's path (a tenant names no other).
            path = URL(url).path.rstrip("/")
            hosts.append(f"[{host}]:{port}{path}" if ":" in host else f"{host}:{port}{path}")
            # The operator named this server: its address is allowed to provider connections
            # (not to webhooks or tools), on that port only.
            for address in _literal_addresses(host) or []:
                provider_allowed.append(NetworkTarget.parse(address, port))
    return EgressPolicy(
        allow_loopback=e.allow_loopback,
        allow_private=e.allow_private,
        blocked=tuple(blocked),
        blocked_names=tuple(blocked_names),
        allowed=tuple(_target(entry) for entry in e.allowed_networks),
        provider_hosts=tuple(hosts),
        provider_allowed=tuple(provider_allowed),
    )


def egress_guard(settings: Settings, resolver: HostResolver = system_resolver) -> Egress:
    return Egress(egress_policy(settings), resolver)


def operator_provider_urls(settings: Settings) -> list[str]:
    """The provider URLs the operator configured itself (implicitly allowed): its
    ``[speech]`` base URLs, a local Ollama when that is its LLM engine, and the URLs of its
    default fallback plans' entries (``[speech.fallback_plans]``; an Ollama entry naming none:
    the local one)."""
    speech = settings.speech
    urls = [speech.openai_base_url, speech.mistral_base_url]
    if speech.llm == "ollama":
        urls.append(OLLAMA_BASE_URL)
    plans = speech.fallback_plans
    urls += [entry.base_url or "" for entry in (*plans.llm, *plans.stt, *plans.tts)]
    if any(entry.provider == "ollama" and not entry.base_url for entry in plans.llm):
        urls.append(OLLAMA_BASE_URL)
    return list(dict.fromkeys(url for url in urls if url))


def _target(entry: str) -> NetworkTarget:
    network, port = network_entry(entry)
    return NetworkTarget(network, port)


def operator_services(settings: Settings) -> list[tuple[str, int]]:
    """Where the operator's own services listen, as configured (host name or address, port):
    a tenant's URL must never become a request to them. The PBX's control ports (every
    Asterisk server's ARI and AMI, FreeSWITCH's event socket), voicedock's own listeners (its
    API, which also takes client-mode media, and the FreeSWITCH audio-stream server, where it
    listens and where FreeSWITCH reaches it) and its PostgreSQL database."""
    a, f = settings.pbx.asterisk, settings.pbx.freeswitch
    places: list[tuple[str, int]] = []
    for server in (a, *a.servers):
        places.append((server.ami_host, server.ami_port))
        places += _url_place(server.ari_url)
    places += [
        (f.esl_host, f.esl_port),
        (f.media_host, f.media_port),
        (settings.server.host, settings.server.port),
    ]
    if f.media_public_url:
        places += _url_place(f.media_public_url)
    places += database_places(settings.database.url)
    return places


def _url_place(url: str) -> list[tuple[str, int]]:
    try:
        parsed = URL(url)
        host, port = parsed.host, parsed.port
    except ValueError:
        return []
    return [] if host is None or port is None else [(host.strip("[]"), port)]


POSTGRES_PORT = 5432


def database_places(url: str) -> list[tuple[str, int]]:
    """The servers of a PostgreSQL URL (``postgresql://user:pass@host1:5432,host2/db``, its
    ``?host=``/``?port=`` parameters; no host: this machine); none for SQLite or a socket."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("postgresql", "postgres"):
        return []
    netloc, _, tail = rest.partition("/")
    query = parse_qs(tail.partition("?")[2] or netloc.partition("?")[2])
    netloc = netloc.partition("?")[0].rpartition("@")[2]
    default_port = _port(query.get("port", [""])[0]) or POSTGRES_PORT
    hosts = [h for h in netloc.split(",") if h] or query.get("host", ["localhost"])
    places = []
    for entry in hosts:
        if entry.startswith("/"):
            continue  # a Unix socket directory
        if entry.startswith("["):
            host, _, rest_port = entry[1:].partition("]")
            port_text = rest_port.removeprefix(":")
        else:
            host, _, port_text = entry.partition(":")
        places.append((host, _port(port_text) or default_port))
    return places


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def _literal_addresses(host: str) -> list[str] | None:
    """The addresses a configured host stands for, or ``None`` for a DNS name (its addresses
    are known only by resolving it, which the guard does where a connection is checked)."""
    # A server bound to every address is at least reachable on loopback (its other addresses
    # are private ones, refused unless allowed; blocking the port everywhere would refuse
    # customers' public servers on the same port).
    if host.lower().rstrip(".") == "localhost" or host in ("0.0.0.0", "::"):
        return ["127.0.0.0/8", "::1"]
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        return None


def egress_warnings(settings: Settings) -> list[str]:
    """What ``voicedock doctor`` warns about: internal networks the organizations may reach."""
    e = settings.egress
    warnings = []
    if e.allow_loopback:
        warnings.append(
            "warning: egress.allow_loopback: every organization may make this node call any "
            "service on its loopback interface (a local model: allowed_networks = "
            '["127.0.0.1:<port>"] instead)'
        )
    if e.allow_private:
        warnings.append(
            "warning: egress.allow_private: every organization may make this node call any "
            "private address (list the networks it needs in allowed_networks instead)"
        )
    for i, entry in enumerate(e.allowed_networks):
        warnings.append(
            f"warning: egress.allowed_networks[{i}]: every organization may make this node "
            f"call {entry} (its webhooks, tools and assistants' providers)"
        )
    return warnings
