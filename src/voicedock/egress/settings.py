"""The egress policy of a running service, built from ``Settings`` (``[egress]``, the PBX's
control addresses and the operator's ``[speech]`` URLs)."""

from __future__ import annotations

import ipaddress

from yarl import URL

from voicedock.config import OLLAMA_BASE_URL, Settings, network_entry
from voicedock.egress.guard import (
    Egress,
    EgressPolicy,
    HostResolver,
    NetworkTarget,
    system_resolver,
)


def egress_policy(settings: Settings) -> EgressPolicy:
    e = settings.egress
    blocked = [_target(entry) for entry in e.blocked_networks]
    blocked += pbx_targets(settings)
    hosts = list(e.provider_hosts)
    provider_allowed: list[NetworkTarget] = []
    for url in operator_provider_urls(settings):
        try:
            parsed = URL(url)
            host, port = parsed.host, parsed.port
        except ValueError:
            continue
        if not host or port is None:
            continue
        host = host.strip("[]").lower()
        hosts.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        # The operator named this server: its address is allowed to provider connections
        # (not to webhooks or tools), on that port only.
        for address in _literal_addresses(host):
            provider_allowed.append(NetworkTarget.parse(address, port))
    return EgressPolicy(
        allow_loopback=e.allow_loopback,
        allow_private=e.allow_private,
        blocked=tuple(blocked),
        allowed=tuple(_target(entry) for entry in e.allowed_networks),
        provider_hosts=tuple(hosts),
        provider_allowed=tuple(provider_allowed),
    )


def egress_guard(settings: Settings, resolver: HostResolver = system_resolver) -> Egress:
    return Egress(egress_policy(settings), resolver)


def operator_provider_urls(settings: Settings) -> list[str]:
    """The provider URLs the operator configured itself (implicitly allowed): its
    ``[speech]`` base URLs, and a local Ollama when that is its LLM engine."""
    speech = settings.speech
    urls = [speech.openai_base_url, speech.mistral_base_url]
    if speech.llm == "ollama":
        urls.append(OLLAMA_BASE_URL)
    return [url for url in urls if url]


def _target(entry: str) -> NetworkTarget:
    network, port = network_entry(entry)
    return NetworkTarget(network, port)


def pbx_targets(settings: Settings) -> list[NetworkTarget]:
    """The PBX's control ports (and voicedock's own API): a tenant's URL must never become a
    request to ARI/AMI/ESL, or loop back into this service."""
    a, f = settings.pbx.asterisk, settings.pbx.freeswitch
    places: list[tuple[str, int]] = [
        (a.ami_host, a.ami_port),
        (f.esl_host, f.esl_port),
        (settings.server.host, settings.server.port),
    ]
    try:
        ari = URL(a.ari_url)
        if ari.host is not None and ari.port is not None:
            places.append((ari.host, ari.port))
    except ValueError:
        pass
    targets = []
    for host, port in places:
        for address in _literal_addresses(host):
            targets.append(NetworkTarget.parse(address, port))
    return targets


def _literal_addresses(host: str) -> list[str]:
    # A server bound to every address is at least reachable on loopback (its other addresses
    # are private ones, refused unless allowed; blocking the port everywhere would refuse
    # customers' public servers on the same port).
    if host.lower() == "localhost" or host in ("0.0.0.0", "::"):
        return ["127.0.0.0/8", "::1"]
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        return []  # a DNS name: its addresses are not known without a lookup


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
