"""Which hosts a tenant may name as a speech provider (LLM, STT, TTS, realtime URLs).

An assistant's ``llm_config.base_url`` receives the call's transcript on every turn, so a
provider URL is accepted only when its host is on the operator's list (``[egress]
provider_hosts``: the public providers by default, the hosts of the operator's own
``[speech]`` URLs always) or is a loopback/private address of a network the operator allows
(``allowed_networks = ["127.0.0.1:11434"]`` for a local Ollama). Entries are ``host``,
``host:port`` or ``*.domain`` (any subdomain); a listed IP address is still judged by the
address rules. The addresses are checked again when the connection is made
(``voicedock.egress.guard``).
"""

from __future__ import annotations

from voicedock.egress.guard import (
    EgressPolicy,
    address_refusal,
    embedded_ipv4,
    literal_host,
    parse_target,
)
from voicedock.errors import UnsafeUrl


def host_entry(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` or ``*.domain`` → (host, port or None)."""
    text = entry.strip().lower()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, None


def host_listed(host: str, port: int, entries: tuple[str, ...]) -> bool:
    """Whether ``host:port`` matches one of the operator's provider host entries."""
    host = host.lower().rstrip(".")
    for entry in entries:
        try:
            pattern, entry_port = host_entry(entry)
        except ValueError:
            continue
        if entry_port not in (None, port):
            continue
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def provider_url_refusal(url: str, policy: EgressPolicy) -> str | None:
    """Why a tenant may not name ``url`` as a provider endpoint, or ``None`` if it may."""
    try:
        _parsed, host, port = parse_target(url)
        literal = literal_host(host)
    except UnsafeUrl as error:
        return error.reason
    if host_listed(host, port, policy.provider_hosts):
        # A listed IP literal is still judged by its address (a name, where it connects).
        return None if literal is None else address_refusal(literal, port, policy.for_providers())
    # Not listed: only an address of a loopback/private network the operator allows.
    if literal is None or embedded_ipv4(literal).is_global:
        return f"host {host} is not an allowed provider host"
    if address_refusal(literal, port, policy.for_providers()) is None:
        return None
    return f"host {host} is not an allowed provider host"
