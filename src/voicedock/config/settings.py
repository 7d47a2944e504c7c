"""The whole configuration (``Settings``, one table per section of the file) and the rules
across its keys and tables that no single field's type can say."""

from __future__ import annotations

from collections.abc import Set

import msgspec

from voicedock.config.calls import (
    CallsSettings,
    ListenSettings,
    RecordingsSettings,
    RehearsalSettings,
    RetentionSettings,
)
from voicedock.config.compliance import ComplianceSettings
from voicedock.config.disclosure import AiDisclosureSettings
from voicedock.config.egress import EgressSettings
from voicedock.config.node import (
    ConsoleSettings,
    DatabaseSettings,
    MetricsSettings,
    NodeSettings,
    ServerSettings,
)
from voicedock.config.number_health import NumberHealthSettings
from voicedock.config.organizations import (
    AssistantSettings,
    ByokSettings,
    DomainsSettings,
    KnowledgeSettings,
    LimitsSettings,
    NumberSettings,
    RateLimitSettings,
)
from voicedock.config.pbx import PbxSettings, TrunkSettings
from voicedock.config.policy import PolicySettings
from voicedock.config.speech import SpeechSettings
from voicedock.config.table_types import Table
from voicedock.config.telemetry import TelemetrySettings
from voicedock.config.webhooks import WebhookSettings
from voicedock.domain.number_plan import classify
from voicedock.errors import ConfigError


class Settings(Table):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    node: NodeSettings = msgspec.field(default_factory=NodeSettings)
    pbx: PbxSettings = msgspec.field(default_factory=PbxSettings)
    speech: SpeechSettings = msgspec.field(default_factory=SpeechSettings)
    policy: PolicySettings = msgspec.field(default_factory=PolicySettings)
    compliance: ComplianceSettings = msgspec.field(default_factory=ComplianceSettings)
    calls: CallsSettings = msgspec.field(default_factory=CallsSettings)
    recordings: RecordingsSettings = msgspec.field(default_factory=RecordingsSettings)
    trunks: list[TrunkSettings] = msgspec.field(default_factory=list)
    numbers: list[NumberSettings] = msgspec.field(default_factory=list)
    number_health: NumberHealthSettings = msgspec.field(default_factory=NumberHealthSettings)
    assistants: list[AssistantSettings] = msgspec.field(default_factory=list)
    webhooks: WebhookSettings = msgspec.field(default_factory=WebhookSettings)
    egress: EgressSettings = msgspec.field(default_factory=EgressSettings)
    limits: LimitsSettings = msgspec.field(default_factory=LimitsSettings)
    knowledge: KnowledgeSettings = msgspec.field(default_factory=KnowledgeSettings)
    rate_limits: RateLimitSettings = msgspec.field(default_factory=RateLimitSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    console: ConsoleSettings = msgspec.field(default_factory=ConsoleSettings)
    listen: ListenSettings = msgspec.field(default_factory=ListenSettings)
    retention: RetentionSettings = msgspec.field(default_factory=RetentionSettings)
    byok: ByokSettings = msgspec.field(default_factory=ByokSettings)
    rehearsal: RehearsalSettings = msgspec.field(default_factory=RehearsalSettings)
    domains: DomainsSettings = msgspec.field(default_factory=DomainsSettings)
    ai_disclosure: AiDisclosureSettings = msgspec.field(default_factory=AiDisclosureSettings)
    telemetry: TelemetrySettings = msgspec.field(default_factory=TelemetrySettings)

    def check(self) -> None:
        """The rules across keys; a broken one raises ``ConfigError`` naming the key."""
        self.speech.endpointing.check()
        self.speech.fallback_plans.check()
        self.speech.barge_in.check()
        self.pbx.check()
        servers = self.pbx.server_names()
        trunks: dict[str, TrunkSettings] = {}
        for i, trunk in enumerate(self.trunks):
            if trunk.name in trunks:
                raise ConfigError(f"trunks[{i}].name", f"duplicate trunk {trunk.name!r}")
            trunks[trunk.name] = trunk
            trunk.check_server(f"trunks[{i}].pbx", servers)
        assistants = {(a.organization, a.name) for a in self.assistants}
        for i, assistant in enumerate(self.assistants):
            assistant.check_sections(f"assistants[{i}]")
        self._check_numbers(trunks, assistants)
        self.policy.check()
        self.compliance.check()
        self.rehearsal.check()
        self.knowledge.embeddings.check()
        self.webhooks.check(assistants)
        self.egress.check()
        self.limits.check()
        self.listen.check()
        self.byok.check()
        self.domains.check()
        self.telemetry.check()

    def _check_numbers(
        self, trunks: dict[str, TrunkSettings], assistants: Set[tuple[str, str]]
    ) -> None:
        seen: set[str] = set()
        for i, n in enumerate(self.numbers):
            if n.number in seen:
                raise ConfigError(f"numbers[{i}].number", f"duplicate number {n.number}")
            seen.add(n.number)
            trunk = trunks.get(n.trunk)
            if trunk is None:
                raise ConfigError(f"numbers[{i}].trunk", f"unknown trunk {n.trunk!r}")
            if not trunk.serves(n.organization):
                raise ConfigError(
                    f"numbers[{i}].organization",
                    f"trunk {n.trunk!r} does not serve organization {n.organization!r}"
                    " (add it to that trunk's organizations)",
                )
            if n.assistant and (n.organization, n.assistant) not in assistants:
                raise ConfigError(f"numbers[{i}].assistant", f"unknown assistant {n.assistant!r}")

    def fill_in(self, *, countries_given: bool) -> None:
        """What the file left out that other tables decide: the server of a trunk naming
        none (the only one), and without policy.allowed_countries the countries of the
        caller numbers."""
        servers = self.pbx.server_names()
        if len(servers) == 1:
            for trunk in self.trunks:
                trunk.pbx = trunk.pbx or servers[0]
        if not countries_given:
            regions = (classify(n.number) for n in self.numbers)
            self.policy.allowed_countries = sorted(
                {info.region for info in regions if info is not None}
            )
