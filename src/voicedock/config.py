"""Typed settings: one TOML file plus ``VOICEDOCK_*`` environment overrides, validated once.

The file comes from ``--config PATH`` or ``VOICEDOCK_CONFIG``. An environment variable
``VOICEDOCK_<SECTION>__<KEY>`` (double underscore between levels) overrides a scalar, e.g.
``VOICEDOCK_SERVER__PORT=9000`` or ``VOICEDOCK_DATABASE__URL=postgresql://…``. A bad value stops
start-up with a ``ConfigError`` naming the key, e.g. ``config: numbers[0].number: …``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import re
import socket
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from voicedock.domain import provider_keys, provider_urls
from voicedock.domain.audio import MediaFormatName
from voicedock.domain.key_box import KeyBoxError, operator_key
from voicedock.domain.number_plan import NUMBER_TYPES, classify, is_region
from voicedock.domain.webhooks import DeliveryCaps, EventType, decode_secret, parse_url
from voicedock.errors import BadRequest, ConfigError, InvalidSecret, UnsafeUrl
from voicedock.validation import is_e164, is_token

ENV_PREFIX = "VOICEDOCK_"
_PREFIX = re.compile(r"\+[0-9]{1,15}")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 64 * 1024
    # The event loop `voicedock serve` runs on: "uvloop" carries more media sessions per core
    # (docs/performance/media.md).
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"


@dataclass(slots=True)
class DatabaseSettings:
    # sqlite:///relative/or/absolute/path.db  or  postgresql://user:pass@host:port/db
    url: str = "sqlite:///var/voicedock.db"


@dataclass(slots=True)
class NodeSettings:  # [node]: this process among several sharing one database (docs/nodes.md)
    # Names the node in the database (calls' owner, its lease); empty: this host's name, so
    # that a restarted process finds its own calls again. Two nodes never share one id.
    id: str = ""
    # A node that has not renewed its lease for this long is dead: another node ends its calls.
    lease_seconds: int = 10


_NODE_ID_MAX = 64


def default_node_id() -> str:
    """This host's name, reduced to what a node id may hold."""
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "-", socket.gethostname()).strip("-.")
    return name[:_NODE_ID_MAX] or "voicedock"


@dataclass(slots=True)
class AsteriskTransferSettings:  # [pbx.asterisk.transfer]: warm transfers (docs/transfers.md)
    hold_media: str = "tone:ring"  # ARI media URI ("sound:<name>"), "moh:<class>", "": silence
    answer_timeout_seconds: int = 30  # how long the agent's phone may ring
    decision_timeout_seconds: int = 20  # after the briefing, to press 1/2 or say yes/no
    voice_decision: bool = True  # the agent may answer by voice (offline STT), not only DTMF


_HOLD_MEDIA = re.compile(r"(moh|tone|sound|recording):[A-Za-z0-9_.\-/;=]+")
_TRANSFER_RANGES = {"answer_timeout_seconds": (5, 300), "decision_timeout_seconds": (3, 120)}


def _check_asterisk_transfer(t: AsteriskTransferSettings, prefix: str = "pbx.asterisk") -> None:
    key = prefix + ".transfer."
    if t.hold_media and _HOLD_MEDIA.fullmatch(t.hold_media) is None:
        raise ConfigError(key + "hold_media", "must be moh:<class>, tone:/sound:<name> or empty")
    for name, (low, high) in _TRANSFER_RANGES.items():
        if not low <= getattr(t, name) <= high:
            raise ConfigError(key + name, f"must be {low}-{high}")


@dataclass(slots=True)
class AsteriskSettings:
    # One server of several ([[pbx.asterisk.servers]]): the name trunks give as their ``pbx``.
    name: str = ""
    ari_url: str = "http://127.0.0.1:8088/ari"
    ari_user: str = "voicedock"
    ari_password: str = ""
    app: str = "voicedock"
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "voicedock"
    ami_secret: str = ""
    originate_via: Literal["ari", "ami"] = "ari"
    media_connection: Literal["server", "client"] = "server"
    # Client mode: the websocket_client.conf section this node's media legs dial (one per node
    # when several nodes run on one machine, each with its own port: docs/nodes.md).
    media_client_connection: str = "voicedock_media"
    transfer_context: str = "voicedock-transfers"
    transfer: AsteriskTransferSettings = field(default_factory=AsteriskTransferSettings)
    # Several Asterisk servers, each a table of the keys above plus ``name``; a key a server
    # leaves out is the one of [pbx.asterisk]. Empty: [pbx.asterisk] is the one server.
    servers: list[AsteriskSettings] = field(default_factory=list)


@dataclass(slots=True)
class FreeswitchTransferSettings:  # [pbx.freeswitch.transfer]: warm transfers (docs/freeswitch.md)
    timeout_seconds: int = 30  # for the agent to answer, and again to press 1 after the briefing
    # The agent may also answer the warm briefing by voice ("yes" / "no"), heard on the agent
    # leg's audio stream; DTMF decides either way.
    voice_decision: bool = True


# The [pbx.freeswitch] keys of the transfer settings before they had their own table: still
# read (a key given both ways is refused), the new name in [pbx.freeswitch.transfer] beside.
_FREESWITCH_TRANSFER_ALIASES = {
    "warm_transfer_timeout": "timeout_seconds",
    "voice_decision": "voice_decision",
}


def _check_freeswitch_transfer(
    t: FreeswitchTransferSettings, written: typing.Mapping[str, str] | None = None
) -> None:
    """``written``: the key a value was given as, when not its ``[pbx.freeswitch.transfer]`` one."""
    key = (written or {}).get("timeout_seconds", "pbx.freeswitch.transfer.timeout_seconds")
    if t.timeout_seconds <= 0:
        raise ConfigError(key, "must be positive")


def _webhook_egress_aliases(raw: dict[str, Any]) -> None:
    """Move the address keys of ``[webhooks]`` to ``[egress]``, where they now govern every
    URL a tenant names (providers and tools too)."""
    webhooks = raw.get("webhooks")
    if not isinstance(webhooks, dict):
        return
    for name in _EGRESS_KEYS_OF_WEBHOOKS:
        if name not in webhooks:
            continue
        egress = raw.setdefault("egress", {})
        if not isinstance(egress, dict):
            raise ConfigError("egress", "expected a table")
        if name in egress:
            raise ConfigError(
                f"webhooks.{name}", f"given with its new name egress.{name}: keep one"
            )
        egress[name] = webhooks.pop(name)


def network_entry(entry: str) -> tuple[IPNetwork, int | None]:
    """An ``[egress]`` network: a CIDR, an address, or ``address:port`` / ``[v6]:port``
    (that port only). Raises ``ValueError``."""
    text = entry.strip()
    port: int | None = None
    if text.startswith("[") and "]:" in text:
        text, _, port_text = text[1:].partition("]:")
        port = int(port_text)
    elif text.count(":") == 1 and "/" not in text:
        text, _, port_text = text.partition(":")
        port = int(port_text)
    if port is not None and not 0 < port < 65536:
        raise ValueError("port out of range")
    return ipaddress.ip_network(text.strip("[]"), strict=False), port


def _freeswitch_transfer_aliases(raw: dict[str, Any]) -> None:
    """Move the old flat keys of ``[pbx.freeswitch]`` into its ``transfer`` table, checked
    under the name they were given as."""
    pbx = raw.get("pbx")
    freeswitch = pbx.get("freeswitch") if isinstance(pbx, dict) else None
    if not isinstance(freeswitch, dict):
        return
    hints = typing.get_type_hints(FreeswitchTransferSettings)
    for old, new in _FREESWITCH_TRANSFER_ALIASES.items():
        if old not in freeswitch:
            continue
        old_key, new_key = f"pbx.freeswitch.{old}", f"pbx.freeswitch.transfer.{new}"
        table = freeswitch.setdefault("transfer", {})
        if not isinstance(table, dict):
            raise ConfigError("pbx.freeswitch.transfer", "expected a table")
        if new in table:
            raise ConfigError(old_key, f"given with its new name {new_key}: keep one")
        value = _convert(hints[new], freeswitch.pop(old), old_key)
        _check_freeswitch_transfer(FreeswitchTransferSettings(**{new: value}), {new: old_key})
        table[new] = value


@dataclass(slots=True)
class FreeswitchSettings:
    esl_host: str = "127.0.0.1"
    esl_port: int = 8021
    esl_password: str = ""
    # FreeSWITCH ships "ClueCon"; voicedock refuses it unless this is set (tests only).
    allow_default_password: bool = False
    # Numbers whose parked inbound calls are voicedock's; empty: every configured number.
    dids: list[str] = field(default_factory=list)
    transfer_context: str = "voicedock_transfer"  # dialplan/freeswitch/voicedock.xml
    # The websocket server mod_audio_stream connects to (uuid_audio_stream ... start <url>).
    media_host: str = "127.0.0.1"
    media_port: int = 8091
    # How FreeSWITCH reaches that server (ws:// or wss://, no path); empty: ws://host:port.
    media_public_url: str = ""
    transfer: FreeswitchTransferSettings = field(default_factory=FreeswitchTransferSettings)


@dataclass(slots=True)
class PbxSettings:
    kind: Literal["asterisk", "freeswitch", "none"] = "asterisk"
    asterisk: AsteriskSettings = field(default_factory=AsteriskSettings)
    freeswitch: FreeswitchSettings = field(default_factory=FreeswitchSettings)


@dataclass(slots=True)
class TrunkSettings:
    name: str
    endpoint: str = ""  # PJSIP endpoint / sofia gateway; defaults to the name
    codec: MediaFormatName = "ulaw"  # one of domain.audio.CALL_MEDIA_FORMATS
    description: str = ""
    pbx: str = ""  # the [[pbx.asterisk.servers]] name carrying it; "": the only server
    # What the carrier contracted (docs/campaigns.md), counted across every node: new calls
    # per second and calls at once (inbound too); 0: no limit.
    max_cps: int = 0
    max_channels: int = 0
    # The organizations whose numbers may call through it (docs/api.md "Phone numbers"). Empty:
    # those the operator put numbers on (config or `voicedock numbers`), no other.
    organizations: list[str] = field(default_factory=list)

    def serves(self, organization: str) -> bool:
        """Whether a number of ``organization`` may be on this trunk (and call through it)."""
        return not self.organizations or organization in self.organizations


@dataclass(slots=True)
class NumberSettings:
    number: str
    trunk: str
    organization: str
    max_concurrent_calls: int = 1
    assistant: str = ""  # assistant name answering inbound calls
    label: str = ""


@dataclass(slots=True)
class AssistantSettings:
    name: str
    organization: str
    business_name: str = ""
    first_message: str = ""
    provider: str = "offline"
    system_prompt: str = ""
    facts: dict[str, str] = field(default_factory=dict)
    stt_config: dict[str, Any] = field(default_factory=dict)
    tts_config: dict[str, Any] = field(default_factory=dict)
    llm_config: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EchoSettings:  # [speech.echo]: the assistant's own voice heard back (docs/speech.md)
    enabled: bool = True
    max_delay_ms: int = 600  # longest echo path looked for
    correlation: float = 0.85  # match with the audio sent from which inbound audio is echo
    min_cancel_db: float = 8.0  # echo removed, below which someone talks over it


@dataclass(slots=True)
class EndpointingSettings:  # [speech.endpointing]: when the caller's turn is over (docs/speech.md)
    mode: str = "adaptive"  # adaptive | fixed (always end_silence_ms)
    end_silence_ms: int = 600  # silence that ends a turn (adaptive: when its text is unclear)
    complete_silence_ms: int = 450  # adaptive: the turn reads as a finished sentence
    incomplete_silence_ms: int = 1000  # adaptive: the turn trails off ("and", "um", ",")


@dataclass(slots=True)
class SpeechSettings:
    stt: str = "faster_whisper"
    tts: str = "piper"
    llm: str = "rule_based"
    # The host's side of the offline engines: only set here, never by an assistant
    # (domain/provider_keys.py lists what an organization may set per assistant).
    whisper_model_path: str = ""  # empty: the packaged Whisper-base weights
    whisper_cache_dir: str = ""  # where those are assembled (empty: ~/.cache/voicedock)
    whisper_device: str = "cpu"  # cpu | cuda | auto
    whisper_compute_type: str = "int8"
    whisper_cpu_threads: int = 0  # 0: CTranslate2's default
    piper_model_path: str = ""  # your own Piper voice (.onnx; empty: the packaged voice)
    # The first message synthesized while the call rings, through the node's synthesis cache
    # and pool (false: synthesized after the answer, no cache; pipeline/synthesis.py).
    presynthesis: bool = True
    synthesis_cache_mb: int = 64  # offline voices' audio kept for repeated texts
    synthesis_workers: int = 0  # syntheses at once (0: the machine's cores)
    # Sentences waiting for the pool beyond which nothing more is synthesized ahead (the
    # greeting is then synthesized after the answer); audio a caller waits for always queues.
    synthesis_queue: int = 500
    # Offline recognition at load (docs/speech.md): every call's Whisper work in one pool of
    # workers on one model, finals before interims (false: a thread per transcription).
    recognition_pool: bool = True
    recognition_workers: int = 0  # transcriptions at once (0: the machine's cores)
    # New calls with offline STT are refused (REST 503, inbound rejected, campaigns wait)
    # while transcriptions wait longer than this for a worker (0: never refused).
    admission_wait_ms: int = 250
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str = ""
    mistral_base_url: str = "https://api.mistral.ai/v1"
    mistral_api_key: str = ""
    deepgram_api_key: str = ""
    elevenlabs_api_key: str = ""
    xai_api_key: str = ""
    echo: EchoSettings = field(default_factory=EchoSettings)
    endpointing: EndpointingSettings = field(default_factory=EndpointingSettings)


# Ranges never called, whatever the rest of the policy says: global services billed at
# satellite or premium rates, the usual targets of toll fraud (docs/transfers.md).
# `policy.extra_blocked_prefixes` adds to them; nothing removes them.
BUILT_IN_BLOCKED_PREFIXES = (
    "+808",  # international shared-cost service
    "+870",  # Inmarsat
    "+878",  # universal personal telecommunications (forwarded anywhere)
    "+881",  # global mobile satellite systems
    "+882",  # international networks
    "+883",  # international networks
    "+888",  # international telecommunications for disaster relief (OCHA)
    "+979",  # international premium rate service
)
# Number types (domain/number_plan.py) refused unless the operator changes the list: the caller
# pays a premium or part of the cost, or the number forwards anywhere.
DEFAULT_REFUSED_NUMBER_TYPES = ("premium_rate", "shared_cost", "personal_number")
EVERY_COUNTRY = "*"  # in policy.allowed_countries: numbers of every country may be called


@dataclass(slots=True)
class PolicySettings:  # [policy]: destinations of outbound calls and transfers (docs/transfers.md)
    # Countries whose numbers may be called: ISO 3166-1 codes ("NL"; "001": global services
    # such as +800), or "*" for every country. Left out of the file: the countries of the
    # caller numbers in [[numbers]]; empty: no external number at all.
    allowed_countries: list[str] = field(default_factory=list)
    refused_number_types: list[str] = field(
        default_factory=lambda: list(DEFAULT_REFUSED_NUMBER_TYPES)
    )
    # Ranges refused on top of BUILT_IN_BLOCKED_PREFIXES (which always apply).
    extra_blocked_prefixes: list[str] = field(default_factory=list)
    # Transfer targets by name: glob patterns (calls/policy.py, docs/transfers.md).
    internal_targets: list[str] = field(default_factory=list)


DEFAULT_RESUME_MESSAGE = "Sorry, we were cut off. I'm back now. Where were we?"


@dataclass(slots=True)
class CallsSettings:
    # A call a previous run left live (a crash, kill -9) whose caller is still on the line
    # goes on where it was (calls/recovery.py, docs/api.md); false: it is hung up and ends
    # "service-restart".
    resume_after_restart: bool = True
    # What the assistant says first when such a call goes on (instead of its first_message).
    resume_message: str = DEFAULT_RESUME_MESSAGE


RECORDING_FILE_FORMATS = ("wav", "flac")


@dataclass(slots=True)
class RecordingsSettings:  # [recordings]: call recordings (docs/recordings.md)
    # Where this node writes recordings (<directory>/<organization>/<call id>.<format>);
    # relative paths are from the working directory. Empty: calls are not recorded.
    directory: str = ""
    format: str = "wav"  # wav or flac (stereo: caller left, assistant right)
    retention_days: int = 0  # older files are deleted; 0 keeps them


@dataclass(slots=True)
class WebhookEndpointSettings:
    """A webhook endpoint defined in the configuration (mirrored into the store at start-up)."""

    name: str  # identifies the endpoint across restarts (with the organization)
    organization: str
    url: str
    secret: str  # whsec_ + base64 of 24-64 random bytes; `voicedock` never prints it
    assistant: str = ""  # assistant name: only this assistant's events (an override)
    event_types: list[str] = field(default_factory=list)  # empty: every type but transcript


@dataclass(slots=True)
class WebhookSettings:
    # The addresses webhooks may reach are [egress]'s (the keys once here are read as theirs).
    concurrency: int = 32  # requests in flight on this node
    # Requests in flight to one endpoint, and to one organization's endpoints, on every node
    # together (0: no cap): a hanging endpoint holds no more slots than these (docs/webhooks.md).
    concurrency_per_endpoint: int = DeliveryCaps().per_endpoint  # 2
    concurrency_per_organization: int = DeliveryCaps().per_organization  # 4
    request_timeout_seconds: int = 15
    connect_timeout_seconds: int = 5
    poll_interval_ms: int = 1000
    endpoints: list[WebhookEndpointSettings] = field(default_factory=list)


# Where the "ollama" LLM engine connects when its section names no base_url (Ollama's own
# default): allowed to providers when it is the operator's [speech] llm.
OLLAMA_BASE_URL = "http://127.0.0.1:11434/v1"

# The hosts the public speech providers are reached at (the clients' default URLs): what a
# tenant's provider URL may name unless the operator's [egress] provider_hosts says otherwise.
DEFAULT_PROVIDER_HOSTS = (
    "api.openai.com",
    "api.mistral.ai",
    "api.x.ai",
    "api.deepgram.com",
    "api.elevenlabs.io",
)


@dataclass(slots=True)
class EgressSettings:  # [egress]: the URLs tenants name (docs/speech.md, docs/webhooks.md)
    # Loopback/private addresses are refused unless allowed (the lab allows loopback).
    allow_loopback: bool = False
    allow_private: bool = False
    # Networks (CIDR) or "address:port" allowed despite the above, e.g. "127.0.0.1:11434".
    allowed_networks: list[str] = field(default_factory=list)
    blocked_networks: list[str] = field(default_factory=list)  # never called
    # Hosts a tenant's provider URL may name: "host", "host:port" or "*.domain" (any path),
    # each optionally followed by the one path allowed there ("llm.internal:8000/v1").
    provider_hosts: list[str] = field(default_factory=lambda: list(DEFAULT_PROVIDER_HOSTS))


# [webhooks] keys that became [egress]'s: still read there (a key given both ways is refused).
_EGRESS_KEYS_OF_WEBHOOKS = (
    "allow_loopback",
    "allow_private",
    "allowed_networks",
    "blocked_networks",
)


@dataclass(slots=True)
class OrganizationLimitSettings:  # [[limits.organizations]]
    organization: str
    max_concurrent_calls: int = 0  # the organization's calls at once, every node; 0: no limit


@dataclass(slots=True)
class LimitsSettings:  # [limits]: what one key or organization may hold open at once
    organizations: list[OrganizationLimitSettings] = field(default_factory=list)
    # Open event streams (GET /calls/{id}/events), every node together: more are answered 429.
    open_streams_per_key: int = 10  # 0: no cap but the node's
    open_streams_per_organization: int = 40
    # Calls an organization may have waiting with ``scheduled_at`` (every node); more are
    # answered 429. ``voicedock organizations set-limits`` overrides it per organization.
    scheduled_calls_per_organization: int = 1000  # 0: no limit
    # Voice previews (POST /voices/{id}/preview) under way at once, each node: of one
    # organization (0: no cap but the node's), and of all; more are answered 429 (docs/voices.md).
    previews_per_organization: int = 2
    previews_per_node: int = 8

    def organization_max_calls(self, name: str) -> int:
        return next(
            (o.max_concurrent_calls for o in self.organizations if o.organization == name), 0
        )


@dataclass(slots=True)
class RateLimitSettings:  # [rate_limits]: per API key and per organization, each node; 0: none
    requests_per_second: int = 0  # per API key
    calls_per_second: int = 0  # POST /calls/outbound per API key
    organization_requests_per_second: int = 0
    organization_calls_per_second: int = 0


@dataclass(slots=True)
class MetricsSettings:  # [metrics]: GET /metrics for Prometheus (docs/observability.md)
    # What Prometheus sends as "Authorization: Bearer <token>" (its `authorization`
    # setting); empty: /metrics is off (404). At least 16 characters.
    bearer_token: str = ""


@dataclass(slots=True)
class ConsoleSettings:  # [console]: the web console at /console (docs/console.md)
    enabled: bool = True
    session_hours: int = 12  # a console sign-in lasts this long (the key's revocation ends it)
    # The session cookie is "__Host-" prefixed and sent by browsers only over https (and to
    # http://localhost); false: a console reached over plain http on another host (a lab).
    secure_cookie: bool = True


@dataclass(slots=True)
class ListenSettings:  # [listen]: live listen, whisper and take over (docs/live-listen.md)
    enabled: bool = True  # false: GET /calls/{id}/listen answers 404
    # Listeners at once, each node: of one call, of one organization's calls, of all calls.
    max_listeners_per_call: int = 3
    max_listeners_per_organization: int = 10
    max_listeners: int = 50
    # How much audio a listener that falls behind may have waiting; older frames are dropped
    # (counted in voicedock_listen_frames_dropped_total), the call never waits.
    max_backlog_ms: int = 2000
    # The console's default "Take over" target (a warm transfer): an internal target of
    # [policy] internal_targets, or an E.164 number the policy allows. Empty: none.
    supervisor_extension: str = ""


BYOK_MODES = ("allowed", "off", "required")


@dataclass(slots=True)
class ByokSettings:  # [byok]: organizations' own provider keys (docs/provider-keys.md)
    # allowed: organizations may store keys (/provider-keys) and reference them; off: 403 on
    # /provider-keys and on references; required: a cloud provider section must reference one
    # (the operator's [speech] keys are not used for organizations' calls).
    mode: str = "allowed"
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


@dataclass(slots=True)
class RetentionSettings:  # [retention]: how long call records are kept (docs/api.md); 0: forever
    # Call records (with their events, transcripts and analysis) that ended longer ago than
    # this are deleted; GET /calls/{id} answers 404 for them.
    call_days: int = 0
    # The transcript (messages, transcript events), summary and analysis of calls that ended
    # longer ago than this are deleted; the record, its status and timings stay.
    transcript_days: int = 0


@dataclass(slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    node: NodeSettings = field(default_factory=NodeSettings)
    pbx: PbxSettings = field(default_factory=PbxSettings)
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    calls: CallsSettings = field(default_factory=CallsSettings)
    recordings: RecordingsSettings = field(default_factory=RecordingsSettings)
    trunks: list[TrunkSettings] = field(default_factory=list)
    numbers: list[NumberSettings] = field(default_factory=list)
    assistants: list[AssistantSettings] = field(default_factory=list)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    egress: EgressSettings = field(default_factory=EgressSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    listen: ListenSettings = field(default_factory=ListenSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    byok: ByokSettings = field(default_factory=ByokSettings)
    lab: dict[str, Any] = field(default_factory=dict)


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: typing.Mapping[str, str] | None = None
) -> Settings:
    """Load, override from the environment, and validate. Raises ``ConfigError``."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    source = path if path is not None else env.get(ENV_PREFIX + "CONFIG")
    if source:
        try:
            raw = tomllib.loads(Path(source).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("--config", f"file not found: {source}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("--config", f"not valid TOML: {exc}") from None
    _apply_env(raw, env)
    _retired_keys(raw)
    _freeswitch_transfer_aliases(raw)
    _webhook_egress_aliases(raw)
    _inherit_asterisk_keys(raw)
    settings: Settings = _build(Settings, raw, "")
    _default_countries(raw, settings)
    _check(settings)
    return settings


def _apply_env(raw: dict[str, Any], env: typing.Mapping[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if len(parts) < 2 or not all(parts):
            continue
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(".".join(parts), f"{name} overrides a non-table value")
        node[parts[-1]] = value  # a string; _build converts it to the field's type


def _inherit_asterisk_keys(raw: dict[str, Any]) -> None:
    """Each of [[pbx.asterisk.servers]] takes the keys it leaves out from [pbx.asterisk]."""
    pbx = raw.get("pbx")
    asterisk = pbx.get("asterisk") if isinstance(pbx, dict) else None
    servers = asterisk.get("servers") if isinstance(asterisk, dict) else None
    if not isinstance(asterisk, dict) or not isinstance(servers, list):
        return  # no list, or not a table: _build names the key
    shared = {k: v for k, v in asterisk.items() if k not in ("servers", "name")}
    asterisk["servers"] = [
        {**shared, **server} if isinstance(server, dict) else server for server in servers
    ]


def _build(cls: type[Any], raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(prefix or "<root>", "expected a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise ConfigError(_join(prefix, key), "unknown key")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = _join(prefix, f.name)
        if f.name in raw:
            values[f.name] = _convert(hints[f.name], raw[f.name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(key, "is required")
    return cls(**values)


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(typing.cast(type[Any], tp), value, key)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(key, f"must be one of {', '.join(map(repr, choices))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(key, "expected a list")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, "expected a table")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(key, "unsupported union type")  # not used by Settings
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(key, "expected true or false")
        return value
    if tp is int:
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(key, f"expected an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, "expected an integer")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, "expected a string")
        return value
    return value


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


_EVENT_TYPES = frozenset(t.value for t in EventType)


def _check(s: Settings) -> None:
    """Cross-field rules a type cannot express."""
    if not 0 < s.server.port < 65536:
        raise ConfigError("server.port", "must be 1-65535")
    if not 1024 <= s.server.max_body_bytes <= 16 * 1024 * 1024:
        raise ConfigError("server.max_body_bytes", "must be between 1 KiB and 16 MiB")
    if not s.database.url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError("database.url", "must start with sqlite:/// or postgresql://")
    if not s.node.id:
        s.node.id = default_node_id()
    if not is_token(s.node.id) or len(s.node.id) > _NODE_ID_MAX:
        raise ConfigError("node.id", "1-64 letters, digits, '_', '.', '-'")
    _range("node.lease_seconds", s.node.lease_seconds, 3, 300)
    _check_speech(s.speech)
    _check_echo(s.speech.echo)
    _check_endpointing(s.speech.endpointing)
    _check_asterisk(s.pbx.asterisk, "pbx.asterisk")
    servers = _check_asterisk_servers(s.pbx.asterisk) if s.pbx.kind == "asterisk" else []
    if s.pbx.kind == "freeswitch" and (
        s.pbx.freeswitch.esl_password in ("", "ClueCon")
        and not s.pbx.freeswitch.allow_default_password
    ):
        raise ConfigError(
            "pbx.freeswitch.esl_password", "refusing the empty or default ESL password 'ClueCon'"
        )
    _check_freeswitch(s.pbx.freeswitch)
    trunk_names: set[str] = set()
    for i, trunk in enumerate(s.trunks):
        if not is_token(trunk.name):
            raise ConfigError(f"trunks[{i}].name", "letters, digits, '_', '.', '-' only")
        if trunk.name in trunk_names:
            raise ConfigError(f"trunks[{i}].name", f"duplicate trunk {trunk.name!r}")
        trunk_names.add(trunk.name)
        if not trunk.endpoint:
            trunk.endpoint = trunk.name
        if not is_token(trunk.endpoint):
            raise ConfigError(f"trunks[{i}].endpoint", "letters, digits, '_', '.', '-' only")
        _check_trunk_pbx(trunk, f"trunks[{i}].pbx", servers)
        _range(f"trunks[{i}].max_cps", trunk.max_cps, 0, 10_000)
        _range(f"trunks[{i}].max_channels", trunk.max_channels, 0, 100_000)
        for j, organization in enumerate(trunk.organizations):
            if not organization.strip():
                raise ConfigError(f"trunks[{i}].organizations[{j}]", "must not be empty")
    trunks = {trunk.name: trunk for trunk in s.trunks}
    assistant_keys = {(a.organization, a.name) for a in s.assistants}
    for i, a in enumerate(s.assistants):
        if not a.name.strip():
            raise ConfigError(f"assistants[{i}].name", "must not be empty")
        if not a.organization.strip():
            raise ConfigError(f"assistants[{i}].organization", "must not be empty")
        _check_assistant_sections(a, f"assistants[{i}]")
    seen_numbers: set[str] = set()
    for i, n in enumerate(s.numbers):
        if not is_e164(n.number):
            raise ConfigError(f"numbers[{i}].number", "must be E.164 (+ and 7-15 digits)")
        if n.number in seen_numbers:
            raise ConfigError(f"numbers[{i}].number", f"duplicate number {n.number}")
        seen_numbers.add(n.number)
        if n.trunk not in trunk_names:
            raise ConfigError(f"numbers[{i}].trunk", f"unknown trunk {n.trunk!r}")
        if not n.organization.strip():
            raise ConfigError(f"numbers[{i}].organization", "must not be empty")
        if not trunks[n.trunk].serves(n.organization):
            raise ConfigError(
                f"numbers[{i}].organization",
                f"trunk {n.trunk!r} does not serve organization {n.organization!r}"
                " (add it to that trunk's organizations)",
            )
        if not 1 <= n.max_concurrent_calls <= 10000:
            raise ConfigError(f"numbers[{i}].max_concurrent_calls", "must be 1-10000")
        if n.assistant and (n.organization, n.assistant) not in assistant_keys:
            raise ConfigError(f"numbers[{i}].assistant", f"unknown assistant {n.assistant!r}")
    _check_policy(s.policy)
    if not s.calls.resume_message.strip():
        raise ConfigError("calls.resume_message", "must not be empty")
    _check_webhooks(s.webhooks, assistant_keys)
    _check_egress(s.egress)
    if s.recordings.format not in RECORDING_FILE_FORMATS:
        raise ConfigError(
            "recordings.format", f"must be one of {', '.join(RECORDING_FILE_FORMATS)}"
        )
    _range("recordings.retention_days", s.recordings.retention_days, 0, 36_500)
    for name in (f.name for f in dataclasses.fields(RateLimitSettings)):
        _range(f"rate_limits.{name}", getattr(s.rate_limits, name), 0, 100_000)
    limited: set[str] = set()
    for i, o in enumerate(s.limits.organizations):
        key = f"limits.organizations[{i}]"
        if not o.organization.strip():
            raise ConfigError(f"{key}.organization", "must not be empty")
        if o.organization in limited:
            raise ConfigError(f"{key}.organization", f"duplicate organization {o.organization!r}")
        limited.add(o.organization)
        _range(f"{key}.max_concurrent_calls", o.max_concurrent_calls, 0, 100_000)
    _range("limits.open_streams_per_key", s.limits.open_streams_per_key, 0, 10_000)
    _range(
        "limits.open_streams_per_organization", s.limits.open_streams_per_organization, 0, 10_000
    )
    _range(
        "limits.scheduled_calls_per_organization",
        s.limits.scheduled_calls_per_organization,
        0,
        100_000,
    )
    _range("limits.previews_per_organization", s.limits.previews_per_organization, 0, 10_000)
    _range("limits.previews_per_node", s.limits.previews_per_node, 1, 10_000)
    _range("retention.call_days", s.retention.call_days, 0, 36_500)
    _range("retention.transcript_days", s.retention.transcript_days, 0, 36_500)
    _check_metrics_and_console(s.metrics, s.console)
    _check_listen(s.listen)
    _check_byok(s.byok)


# Keys of [policy] that meant something else before: refused, naming what replaced them, so that
# a copied configuration is not read with a weaker meaning than its writer intended.
_RETIRED_POLICY_KEYS = {
    "allowed_prefixes": 'replaced by allowed_countries (ISO country codes, e.g. ["NL"])',
    "blocked_prefixes": (
        "replaced by extra_blocked_prefixes, which adds to the built-in ranges (they can no "
        "longer be removed)"
    ),
}


def _retired_keys(raw: dict[str, Any]) -> None:
    policy = raw.get("policy")
    if isinstance(policy, dict):
        for key, replacement in _RETIRED_POLICY_KEYS.items():
            if key in policy:
                raise ConfigError(f"policy.{key}", replacement)


def _default_countries(raw: dict[str, Any], s: Settings) -> None:
    """Without policy.allowed_countries, the countries of the operator's own caller numbers."""
    policy = raw.get("policy")
    if isinstance(policy, dict) and "allowed_countries" in policy:
        return
    regions = (classify(n.number) for n in s.numbers if is_e164(n.number))
    s.policy.allowed_countries = sorted({info.region for info in regions if info is not None})


def _check_policy(p: PolicySettings) -> None:
    for i, country in enumerate(p.allowed_countries):
        if country != EVERY_COUNTRY and not is_region(country):
            raise ConfigError(
                f"policy.allowed_countries[{i}]",
                'an ISO 3166-1 country code in capitals ("NL"), "001" or "*"',
            )
    for i, kind in enumerate(p.refused_number_types):
        if kind not in NUMBER_TYPES:
            choices = ", ".join(NUMBER_TYPES)
            raise ConfigError(f"policy.refused_number_types[{i}]", f"must be one of {choices}")
    for i, prefix in enumerate(p.extra_blocked_prefixes):
        if _PREFIX.fullmatch(prefix) is None:
            raise ConfigError(
                f"policy.extra_blocked_prefixes[{i}]", "must be '+' followed by 1-15 digits"
            )


_METRICS_TOKEN = re.compile(r"[A-Za-z0-9_\-.~+/]{16,200}=*")


WHISPER_DEVICES = ("cpu", "cuda", "auto")
WHISPER_COMPUTE_TYPES = (
    "default", "auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16",
    "int16", "float16", "bfloat16", "float32",
)  # fmt: skip


def _check_speech(speech: SpeechSettings) -> None:
    if speech.whisper_device not in WHISPER_DEVICES:
        raise ConfigError("speech.whisper_device", f"must be one of {', '.join(WHISPER_DEVICES)}")
    if speech.whisper_compute_type not in WHISPER_COMPUTE_TYPES:
        choices = ", ".join(WHISPER_COMPUTE_TYPES)
        raise ConfigError("speech.whisper_compute_type", f"must be one of {choices}")
    _range("speech.whisper_cpu_threads", speech.whisper_cpu_threads, 0, 256)
    _range("speech.synthesis_cache_mb", speech.synthesis_cache_mb, 0, 65536)
    _range("speech.synthesis_workers", speech.synthesis_workers, 0, 256)
    _range("speech.synthesis_queue", speech.synthesis_queue, 0, 1_000_000)
    _range("speech.recognition_workers", speech.recognition_workers, 0, 256)
    _range("speech.admission_wait_ms", speech.admission_wait_ms, 0, 60_000)


def _check_assistant_sections(a: AssistantSettings, key: str) -> None:
    """An assistant of the file is stored like one made through the API (its organization
    manages it there), so its provider sections follow the same list: the host's settings
    belong in [speech], not in an assistant."""
    realtime = a.provider == "xai_realtime"
    sections = (
        ("stt_config", provider_keys.STT, a.stt_config),
        ("tts_config", provider_keys.TTS, a.tts_config),
        ("llm_config", provider_keys.REALTIME if realtime else provider_keys.LLM, a.llm_config),
    )
    for name, kind, section in sections:
        named = section.get("provider")
        provider = a.provider if realtime and name == "llm_config" else named
        try:
            provider_keys.check_section(
                kind, provider if isinstance(provider, str) else None, section, name
            )
        except BadRequest as exc:
            where, _, problem = exc.message.partition(" ")
            if "set by the operator" in problem:
                problem += " (the host's speech settings belong in [speech])"
            raise ConfigError(f"{key}.{where}", problem) from None


def _check_listen(listen: ListenSettings) -> None:
    _range("listen.max_listeners_per_call", listen.max_listeners_per_call, 1, 100)
    _range(
        "listen.max_listeners_per_organization", listen.max_listeners_per_organization, 1, 10_000
    )
    _range("listen.max_listeners", listen.max_listeners, 1, 10_000)
    _range("listen.max_backlog_ms", listen.max_backlog_ms, 100, 60_000)
    # Whether the policy allows it is checked when the service opens (calls/listen.py).
    extension = listen.supervisor_extension
    if extension and (extension != extension.strip() or len(extension) > 80):
        raise ConfigError("listen.supervisor_extension", "one line, at most 80 characters")


def _check_byok(b: ByokSettings) -> None:
    if b.mode not in BYOK_MODES:
        raise ConfigError("byok.mode", f"must be one of: {', '.join(BYOK_MODES)}")
    if b.key and b.key_file:
        raise ConfigError("byok.key", "set key or key_file, not both")
    try:
        b.operator_key()
    except OSError as exc:
        raise ConfigError("byok.key_file", f"cannot read: {exc.strerror}") from None
    except KeyBoxError as exc:
        raise ConfigError("byok.key", str(exc)) from None


def _check_metrics_and_console(m: MetricsSettings, c: ConsoleSettings) -> None:
    if m.bearer_token and _METRICS_TOKEN.fullmatch(m.bearer_token) is None:
        raise ConfigError(
            "metrics.bearer_token", "must be 16-200 characters of A-Z a-z 0-9 _ - . ~ + / ="
        )
    if not 1 <= c.session_hours <= 24 * 30:
        raise ConfigError("console.session_hours", "must be between 1 and 720")


def _check_asterisk(a: AsteriskSettings, key: str) -> None:
    if not 0 < a.ami_port < 65536:
        raise ConfigError(f"{key}.ami_port", "must be 1-65535")
    if not is_token(a.media_client_connection) or len(a.media_client_connection) > _NODE_ID_MAX:
        raise ConfigError(
            f"{key}.media_client_connection",
            "a websocket_client.conf section: 1-64 letters, digits, '_', '.', '-'",
        )
    _check_asterisk_transfer(a.transfer, key)


def _check_asterisk_servers(a: AsteriskSettings) -> list[str]:
    """The names of [[pbx.asterisk.servers]], each server checked as [pbx.asterisk] is."""
    if a.name:
        raise ConfigError("pbx.asterisk.name", "only a server of pbx.asterisk.servers has one")
    names: list[str] = []
    for i, server in enumerate(a.servers):
        key = f"pbx.asterisk.servers[{i}]"
        if not is_token(server.name) or len(server.name) > _NODE_ID_MAX:
            raise ConfigError(f"{key}.name", "1-64 letters, digits, '_', '.', '-'")
        if server.name in names:
            raise ConfigError(f"{key}.name", f"duplicate server {server.name!r}")
        names.append(server.name)
        if server.servers:
            raise ConfigError(f"{key}.servers", "a server lists no servers of its own")
        if server.media_connection != a.media_connection:
            # Client mode: one /media route of this process takes every server's media legs.
            raise ConfigError(
                f"{key}.media_connection", "set it in [pbx.asterisk]: one for every server"
            )
        _check_asterisk(server, key)
    return names


def _check_trunk_pbx(trunk: TrunkSettings, key: str, servers: list[str]) -> None:
    """A trunk names the server that carries it; with one server (or none listed) it may not."""
    if not trunk.pbx:
        if len(servers) > 1:
            raise ConfigError(key, f"name the server carrying it: one of {', '.join(servers)}")
        trunk.pbx = servers[0] if servers else ""
        return
    if not servers:
        raise ConfigError(key, "names a server, but pbx.asterisk lists no servers")
    if trunk.pbx not in servers:
        raise ConfigError(key, f"unknown server {trunk.pbx!r}; one of {', '.join(servers)}")


def _check_webhooks(w: WebhookSettings, assistant_keys: set[tuple[str, str]]) -> None:
    # Only what needs no network: the URL's syntax here, its addresses when the endpoint is
    # mirrored into the store (egress.check_url) and again before every delivery.
    _range("webhooks.concurrency", w.concurrency, 1, 256)
    _range("webhooks.concurrency_per_endpoint", w.concurrency_per_endpoint, 0, 256)
    _range("webhooks.concurrency_per_organization", w.concurrency_per_organization, 0, 256)
    _range("webhooks.request_timeout_seconds", w.request_timeout_seconds, 1, 300)
    _range("webhooks.connect_timeout_seconds", w.connect_timeout_seconds, 1, 300)
    _range("webhooks.poll_interval_ms", w.poll_interval_ms, 50, 60_000)
    seen: set[tuple[str, str]] = set()
    for i, e in enumerate(w.endpoints):
        key = f"webhooks.endpoints[{i}]"
        if not is_token(e.name):
            raise ConfigError(f"{key}.name", "letters, digits, '_', '.', '-' only")
        if not e.organization.strip():
            raise ConfigError(f"{key}.organization", "must not be empty")
        if (e.organization, e.name) in seen:
            raise ConfigError(f"{key}.name", f"duplicate endpoint {e.name!r}")
        seen.add((e.organization, e.name))
        try:
            parse_url(e.url)
        except UnsafeUrl as exc:
            raise ConfigError(f"{key}.url", exc.reason) from None
        try:
            decode_secret(e.secret)
        except InvalidSecret as exc:
            raise ConfigError(f"{key}.secret", f"{exc} (expected whsec_ + base64)") from None
        for j, event_type in enumerate(e.event_types):
            if event_type not in _EVENT_TYPES:
                choices = ", ".join(sorted(_EVENT_TYPES))
                raise ConfigError(f"{key}.event_types[{j}]", f"must be one of {choices}")
        if e.assistant and (e.organization, e.assistant) not in assistant_keys:
            raise ConfigError(f"{key}.assistant", f"unknown assistant {e.assistant!r}")


def _check_egress(e: EgressSettings) -> None:
    for name in ("allowed_networks", "blocked_networks"):
        for i, entry in enumerate(getattr(e, name)):
            try:
                network_entry(entry)
            except ValueError:
                raise ConfigError(
                    f"egress.{name}[{i}]", "not an IP network (CIDR) or address:port"
                ) from None
    for i, host in enumerate(e.provider_hosts):
        if not isinstance(host, str) or not _PROVIDER_HOST.fullmatch(host.strip()):
            raise ConfigError(
                f"egress.provider_hosts[{i}]",
                "a host name, host:port or *.domain (no scheme), then optionally its one /path",
            )


# A host (or *.domain) and port as a provider URL names them, then the one path allowed there.
_PROVIDER_HOST = re.compile(
    rf"((\*\.)?{provider_urls.NAME_PATTERN}|{provider_urls.IPV6_PATTERN})"
    rf"{provider_urls.PORT_PATTERN}"
    rf"({provider_urls.PATH_PATTERN})?"
)


def _check_echo(echo: EchoSettings) -> None:
    _range("speech.echo.max_delay_ms", echo.max_delay_ms, 1, 2000)
    for name, low, high in (("correlation", 0.0, 1.0), ("min_cancel_db", 0.0, 40.0)):
        value = getattr(echo, name)
        if isinstance(value, str):  # from a VOICEDOCK_SPEECH__ECHO__* variable
            with contextlib.suppress(ValueError):
                value = float(value)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not low <= value <= high or (name == "correlation" and value in (0, 1)):
            bounds = f"between {low:g} and {high:g}"
            raise ConfigError(f"speech.echo.{name}", f"must be a number {bounds}")
        setattr(echo, name, float(value))


def _check_endpointing(ep: EndpointingSettings) -> None:
    key = "speech.endpointing."
    if ep.mode not in ("adaptive", "fixed"):
        raise ConfigError(key + "mode", "must be adaptive or fixed")
    for name in ("end_silence_ms", "complete_silence_ms", "incomplete_silence_ms"):
        _range(key + name, getattr(ep, name), 100, 5000)
    if not ep.complete_silence_ms <= ep.end_silence_ms <= ep.incomplete_silence_ms:
        raise ConfigError(
            key + "end_silence_ms", "must lie between complete_silence_ms and incomplete_silence_ms"
        )


def _range(key: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(key, f"must be {low}-{high}")


def _check_freeswitch(fs: FreeswitchSettings) -> None:
    key = "pbx.freeswitch."
    if not 0 < fs.media_port < 65536:
        raise ConfigError(key + "media_port", "must be 1-65535")
    for i, did in enumerate(fs.dids):
        if not is_e164(did):
            raise ConfigError(f"{key}dids[{i}]", "must be E.164 (+ and 7-15 digits)")
    if not is_token(fs.transfer_context):
        raise ConfigError(key + "transfer_context", "letters, digits, '_', '.', '-' only")
    url = fs.media_public_url
    if url and (not re.fullmatch(r"wss?://[A-Za-z0-9.\-\[\]:]+", url)):
        raise ConfigError(key + "media_public_url", "must be ws://host[:port] or wss://...")
    _check_freeswitch_transfer(fs.transfer)
