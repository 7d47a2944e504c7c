"""Which hosts and paths a tenant may name as a speech provider (LLM, STT, TTS, realtime URLs).

An assistant's ``llm_config.base_url`` receives the call's transcript on every turn, so a
provider URL is accepted only when it is scheme, host, port and path (no credentials, query
or fragment: ``domain/provider_urls.py``) and its host is either

* on the operator's list (``[egress] provider_hosts``: the public providers by default, the
  operator's own ``[speech]`` URLs always). Entries are ``host``, ``host:port`` or
  ``*.domain`` (any subdomain), each optionally followed by the one path it allows
  (``llm.internal:8000/v1``); an entry without a path allows any path on that host, as a
  public provider's API does (OpenRouter's ``/api/v1``, Groq's ``/openai/v1``). The
  operator's ``[speech]`` URLs are entries with their path. A listed IP address is still
  judged by the address rules;
* or a loopback/private address of a network the operator allows (``allowed_networks =
  ["127.0.0.1:11434"]`` for a local Ollama). That server is the operator's, not the tenant's:
  the path is the provider's standard one (``/v1`` for an OpenAI-compatible chat server), so
  that no other endpoint of it (``/api/pull``, an admin page) can be reached.

The addresses are checked again when the connection is made (``voicedock.egress.guard``), and
the client builds each request's path from the checked URL (``pipeline/providers/_http.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from voicedock.domain.provider_urls import url_path, url_problem
from voicedock.egress.guard import (
    EgressPolicy,
    address_refusal,
    is_public,
    literal_host,
    name_refusal,
    parse_target,
)
from voicedock.errors import UnsafeUrl


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One entry of ``[egress] provider_hosts``: a host (``*.domain``: its subdomains), the
    port it is limited to, and the path it is limited to (``None``: any)."""

    host: str
    port: int | None = None
    path: str | None = None

    @classmethod
    def parse(cls, entry: str) -> HostEntry:
        """``host``, ``host:port``, ``[v6]:port`` or ``*.domain``, then an optional ``/path``.
        Raises ``ValueError``."""
        text = entry.strip().lower()
        path: str | None = None
        if "/" in text:
            text, slash, rest = text.partition("/")
            path = (slash + rest).rstrip("/")
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            return cls(host, int(rest[1:]) if rest.startswith(":") else None, path)
        if text.count(":") == 1:
            host, _, port = text.partition(":")
            return cls(host, int(port), path)
        return cls(text, None, path)

    def matches(self, host: str, port: int) -> bool:
        if self.port not in (None, port):
            return False
        host = host.lower().rstrip(".")
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and host != self.host[2:]
        return host == self.host


def listed_entries(host: str, port: int, entries: tuple[str, ...]) -> list[HostEntry]:
    """The operator's provider host entries ``host:port`` matches."""
    matching = []
    for entry in entries:
        try:
            parsed = HostEntry.parse(entry)
        except ValueError:
            continue
        if parsed.matches(host, port):
            matching.append(parsed)
    return matching


def provider_url_refusal(url: str, policy: EgressPolicy, standard_path: str) -> str | None:
    """Why a tenant may not name ``url`` as a provider endpoint, or ``None`` if it may.
    ``standard_path``: the provider's own path (its default URL's: ``/v1``), the only one
    allowed on a host the operator's networks allow without listing it."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    try:
        _parsed, host, port = parse_target(url)
        literal = literal_host(host)
    except UnsafeUrl as error:
        return error.reason
    refused = name_refusal(host, port, policy)
    if refused is not None:
        return refused
    path = url_path(url)
    entries = listed_entries(host, port, policy.provider_hosts)
    if entries:
        if not any(entry.path in (None, path) for entry in entries):
            return f"on host {host} the path must be {entries[0].path or '/'} (the operator's)"
        # A listed IP literal is still judged by its address (a name, where it connects).
        return None if literal is None else address_refusal(literal, port, policy.for_providers())
    # Not listed: only an address of a loopback/private network the operator allows.
    not_allowed = f"host {host} is not an allowed provider host"
    if literal is None or is_public(literal):
        return not_allowed
    if address_refusal(literal, port, policy.for_providers()) is not None:
        return not_allowed
    standard = standard_path.rstrip("/")
    if path != standard:
        return f"on host {host} the path must be {standard or '/'} (the provider's own)"
    return None
