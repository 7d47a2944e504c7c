"""What the operator gives organizations: their caller numbers (``[[numbers]]``), the
assistants made for them (``[[assistants]]``), what each may hold at once (``[limits]``,
``[rate_limits]``), and the provider keys they may bring (``[byok]``)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

from voicedock.config.table_types import E164, NotEmpty, Port, Table, one_of
from voicedock.domain import tenant_provider_fields
from voicedock.domain.key_box import KeyBoxError, operator_key
from voicedock.errors import BadRequest, ConfigError


class NumberSettings(Table):
    number: E164
    trunk: str
    organization: NotEmpty
    max_concurrent_calls: Annotated[int, Meta(ge=1, le=10_000)] = 1
    assistant: str = ""  # assistant name answering inbound calls
    label: str = ""


class AssistantSettings(Table):
    name: NotEmpty
    organization: NotEmpty
    business_name: str = ""
    first_message: str = ""
    provider: str = "offline"
    system_prompt: str = ""
    facts: dict[str, str] = msgspec.field(default_factory=dict)
    # What an organization may set per provider (domain/tenant_provider_fields.py), as the API
    # takes it.
    stt_config: dict[str, object] = msgspec.field(default_factory=dict)
    tts_config: dict[str, object] = msgspec.field(default_factory=dict)
    llm_config: dict[str, object] = msgspec.field(default_factory=dict)

    def check_sections(self, key: str) -> None:
        """An assistant of the file is stored like one made through the API (its organization
        manages it there), so its provider sections follow the same list: the host's settings
        belong in [speech], not in an assistant."""
        realtime = self.provider == "xai_realtime"
        sections = (
            ("stt_config", tenant_provider_fields.STT, self.stt_config),
            ("tts_config", tenant_provider_fields.TTS, self.tts_config),
            (
                "llm_config",
                tenant_provider_fields.REALTIME if realtime else tenant_provider_fields.LLM,
                self.llm_config,
            ),
        )
        for name, kind, section in sections:
            named = section.get("provider")
            provider = self.provider if realtime and name == "llm_config" else named
            try:
                tenant_provider_fields.check_section(
                    kind, provider if isinstance(provider, str) else None, section, name
                )
            except BadRequest as exc:
                where, _, problem = exc.message.partition(" ")
                if "set by the operator" in problem:
                    problem += " (the host's speech settings belong in [speech])"
                raise ConfigError(f"{key}.{where}", problem) from None


class OrganizationLimitSettings(Table):
    """[[limits.organizations]]."""

    organization: NotEmpty
    # The organization's calls at once, every node; 0: no limit.
    max_concurrent_calls: Annotated[int, Meta(ge=0, le=100_000)] = 0


Streams = Annotated[int, Meta(ge=0, le=10_000)]


class LimitsSettings(Table):
    """[limits]: what one key or organization may hold open at once."""

    organizations: list[OrganizationLimitSettings] = msgspec.field(default_factory=list)
    # Open event streams (GET /calls/{id}/events), every node together: more are answered 429.
    open_streams_per_key: Streams = 10  # 0: no cap but the node's
    open_streams_per_organization: Streams = 40
    # Calls an organization may have waiting with ``scheduled_at`` (every node); more are
    # answered 429. ``voicedock organizations set-limits`` overrides it per organization.
    scheduled_calls_per_organization: Annotated[int, Meta(ge=0, le=100_000)] = 1000  # 0: none
    # Voice previews (POST /voices/{id}/preview) under way at once, each node: of one
    # organization (0: no cap but the node's), and of all; more are answered 429 (docs/voices.md).
    previews_per_organization: Streams = 2
    previews_per_node: Annotated[int, Meta(ge=1, le=10_000)] = 8

    def organization_max_calls(self, name: str) -> int:
        return next(
            (o.max_concurrent_calls for o in self.organizations if o.organization == name), 0
        )

    def check(self) -> None:
        limited: set[str] = set()
        for i, o in enumerate(self.organizations):
            if o.organization in limited:
                raise ConfigError(
                    f"limits.organizations[{i}].organization",
                    f"duplicate organization {o.organization!r}",
                )
            limited.add(o.organization)


class KnowledgeEmbeddingsSettings(Table):
    """[knowledge.embeddings]: the operator's OpenAI-compatible embeddings endpoint (``url``
    the base, ``{url}/embeddings`` is asked; empty: none). With it, every knowledge base's
    chunks get a vector and a search goes by meaning as well as by words."""

    url: Annotated[str, Meta(pattern=r"^(https?://.+)?$")] = ""
    model: str = ""
    api_key: str = ""
    timeout_seconds: Annotated[float, Meta(gt=0, le=120)] = 10.0

    def check(self) -> None:
        if self.url and not self.model:
            raise ConfigError("knowledge.embeddings.model", "is required with a url")


class KnowledgeSettings(Table):
    """[knowledge]: what an organization's knowledge bases may hold (every node; more is
    answered 422 ``Knowledge limit``, docs/knowledge.md), and the operator's embeddings."""

    bases_per_organization: Annotated[int, Meta(ge=0, le=10_000)] = 50
    documents_per_organization: Annotated[int, Meta(ge=0, le=1_000_000)] = 1000
    chunks_per_organization: Annotated[int, Meta(ge=0, le=10_000_000)] = 50_000
    bytes_per_organization: Annotated[int, Meta(ge=0, le=1 << 40)] = 200 * 1024 * 1024
    # One upload (``POST /knowledge-bases/{id}/documents``), as sent; a PDF's pages read.
    document_bytes: Annotated[int, Meta(ge=1024, le=100 * 1024 * 1024)] = 10 * 1024 * 1024
    pdf_pages: Annotated[int, Meta(ge=1, le=10_000)] = 500
    embeddings: KnowledgeEmbeddingsSettings = msgspec.field(
        default_factory=KnowledgeEmbeddingsSettings
    )


PerSecond = Annotated[int, Meta(ge=0, le=100_000)]


class RateLimitSettings(Table):
    """[rate_limits]: per API key and per organization, each node; 0: none."""

    requests_per_second: PerSecond = 0  # per API key
    calls_per_second: PerSecond = 0  # POST /calls/outbound per API key
    organization_requests_per_second: PerSecond = 0
    organization_calls_per_second: PerSecond = 0


BYOK_MODES = ("allowed", "off", "required")


class ByokSettings(Table):
    """[byok]: organizations' own provider keys (docs/provider-keys.md)."""

    # allowed: organizations may store keys (/provider-keys) and reference them; off: 403 on
    # /provider-keys and on references; required: a cloud provider section must reference one
    # (the operator's [speech] keys are not used for organizations' calls).
    mode: Annotated[str, one_of(BYOK_MODES, f"must be one of: {', '.join(BYOK_MODES)}")] = "allowed"
    # The operator's key sealing the stored keys (AES-256-GCM): 32 random bytes, base64 —
    # inline (better from the environment: VOICEDOCK_BYOK__KEY) or in a file (key_file).
    # Neither set: /provider-keys answers 503 (nothing can be stored).
    key: str = ""
    key_file: str = ""

    def operator_key(self) -> bytes | None:
        """The key's bytes (None: none configured). Raises ``KeyBoxError`` if malformed."""
        text = self.key
        if not text and self.key_file:
            text = Path(self.key_file).read_text(encoding="utf-8")
        return operator_key(text) if text.strip() else None

    def check(self) -> None:
        if self.key and self.key_file:
            raise ConfigError("byok.key", "set key or key_file, not both")
        try:
            self.operator_key()
        except OSError as exc:
            raise ConfigError("byok.key_file", f"cannot read: {exc.strerror}") from None
        except KeyBoxError as exc:
            raise ConfigError("byok.key", str(exc)) from None


class DomainsSettings(Table):
    """[domains]: organizations' own host names, the console branded on them
    (docs/domains.md)."""

    # An organization's key may propose a domain (POST /domains), pending until verified;
    # false: only the operator adds domains (voicedock organizations domains add).
    tenant_proposals: bool = False
    # POST /domains/{id}/verify looks up the TXT record _voicedock.<host>, which must hold the
    # domain's verification token; false: only the operator verifies (... domains verify).
    dns_verification: bool = False
    # A proposed domain not verified within this many days is dropped: no longer listed,
    # counted or in the way of another organization's.
    pending_days: Annotated[int, Meta(ge=1, le=365)] = 7
    # The DNS server asked for that record (an IP address; "": the system's resolvers).
    resolver: str = ""
    resolver_port: Port = 53
    # A request's host is its X-Forwarded-Host header (a reverse proxy in front of every
    # node sets it); false: its Host header, and X-Forwarded-Host is ignored.
    trust_forwarded_host: bool = False

    def check(self) -> None:
        if self.resolver:
            try:
                ipaddress.ip_address(self.resolver)
            except ValueError:
                raise ConfigError("domains.resolver", "must be an IP address") from None
