"""Typed settings: one TOML file plus ``VOICEDOCK_*`` environment overrides, validated once.

The file comes from ``--config PATH`` or ``VOICEDOCK_CONFIG``. An environment variable
``VOICEDOCK_<SECTION>__<KEY>`` (double underscore between levels) overrides a scalar, e.g.
``VOICEDOCK_SERVER__PORT=9000`` or ``VOICEDOCK_DATABASE__URL=postgresql://…``. A bad value stops
start-up with a ``ConfigError`` naming the key, e.g. ``config: numbers[0].number: …``.

``load.py`` reads the file and the environment and decodes them into ``Settings``
(``settings.py``); each section is a msgspec Struct whose fields carry their defaults and
bounds, grouped by concern: this process (``node.py``), the PBX and trunks (``pbx.py``), speech
(``speech.py``), what organizations are given (``organizations.py``), where calls may go
(``policy.py``) and what every automated call passes (``compliance.py``), the URLs tenants
name (``egress.py``), calls' afterlife (``calls.py``), webhooks (``webhooks.py``) and the
node's OpenTelemetry traces (``telemetry.py``).
"""

from voicedock.config.calls import (
    DEFAULT_RESUME_MESSAGE,
    ListenSettings,
    RecordingsSettings,
    RehearsalModelSettings,
    RetentionSettings,
)
from voicedock.config.compliance import CallingHoursSettings, ComplianceSettings
from voicedock.config.egress import DEFAULT_PROVIDER_HOSTS, network_entry
from voicedock.config.load import load_settings
from voicedock.config.node import (
    NodeSettings,
    ServerSettings,
    default_node_id,
)
from voicedock.config.number_health import NumberHealthSettings
from voicedock.config.organizations import (
    AssistantSettings,
    ByokSettings,
    DomainsSettings,
    LimitsSettings,
    NumberSettings,
    OrganizationLimitSettings,
    RateLimitSettings,
)
from voicedock.config.pbx import (
    AsteriskSettings,
    FreeswitchSettings,
    FreeswitchTransferSettings,
    PbxSettings,
    TrunkSettings,
)
from voicedock.config.policy import (
    BUILT_IN_BLOCKED_PREFIXES,
    DEFAULT_REFUSED_NUMBER_TYPES,
    EVERY_COUNTRY,
    PolicySettings,
)
from voicedock.config.settings import Settings
from voicedock.config.speech import (
    OLLAMA_BASE_URL,
    BargeInSettings,
    EchoSettings,
    EndpointingSettings,
    FallbackPlansSettings,
    NoiseSuppressionSettings,
    SpeechSettings,
    VadSettings,
)
from voicedock.config.telemetry import TelemetrySettings
from voicedock.config.webhooks import WebhookEndpointSettings
from voicedock.errors import ConfigError

__all__ = [
    "BUILT_IN_BLOCKED_PREFIXES",
    "DEFAULT_PROVIDER_HOSTS",
    "DEFAULT_REFUSED_NUMBER_TYPES",
    "DEFAULT_RESUME_MESSAGE",
    "EVERY_COUNTRY",
    "OLLAMA_BASE_URL",
    "AssistantSettings",
    "AsteriskSettings",
    "BargeInSettings",
    "ByokSettings",
    "CallingHoursSettings",
    "ComplianceSettings",
    "ConfigError",
    "DomainsSettings",
    "EchoSettings",
    "EndpointingSettings",
    "FallbackPlansSettings",
    "FreeswitchSettings",
    "FreeswitchTransferSettings",
    "LimitsSettings",
    "ListenSettings",
    "NodeSettings",
    "NoiseSuppressionSettings",
    "NumberHealthSettings",
    "NumberSettings",
    "OrganizationLimitSettings",
    "PbxSettings",
    "PolicySettings",
    "RateLimitSettings",
    "RecordingsSettings",
    "RehearsalModelSettings",
    "RetentionSettings",
    "ServerSettings",
    "Settings",
    "SpeechSettings",
    "TelemetrySettings",
    "TrunkSettings",
    "VadSettings",
    "WebhookEndpointSettings",
    "default_node_id",
    "load_settings",
    "network_entry",
]
