"""``/organization``: the API key's organization: its display name, the defaults of its new
assistants and its own embeddings endpoint (set with an admin key), its limits (the operator's:
read-only here)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, cast

import msgspec
from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.assistants import SETTINGS, answered
from voicedock.api.models.base import Body, Reply
from voicedock.api.models.field_types import Time, text
from voicedock.api.models.operations import Schema, operation
from voicedock.domain.campaigns import HOURS_PATTERN
from voicedock.domain.knowledge import KnowledgeEmbeddings
from voicedock.domain.records import Organization as OrganizationRecord
from voicedock.domain.secret_fields import masked
from voicedock.domain.timestamps import iso
from voicedock.domain.vocabulary import Vocabulary
from voicedock.organizations.settings import DEFAULT_FIELDS, DISPLAY_NAME_MAX
from voicedock.organizations.settings import OrganizationLimits as LimitsRecord

# The operator's (voicedock organizations, the configuration): named so that a client learns
# it, refused with 403.
OperatorSetting = Annotated[
    object,
    Meta(
        extra_json_schema={
            "description": "The operator's (voicedock organizations, [limits]): 403 Operator "
            "setting"
        }
    ),
]
DisplayName = Annotated[str, text(DISPLAY_NAME_MAX, line=True)]
# The organization's own calling hours, narrowing the operator's (docs/compliance.md).
CallingHoursText = Annotated[
    str,
    Meta(
        pattern=f"^{HOURS_PATTERN}$",
        description="HH:MM-HH:MM in the callee's local time (end excluded): the organization's "
        "automated calls only within these hours and the operator's; null: the operator's only",
    ),
]


def _defaults(name: str, base: type[msgspec.Struct], nullable: bool) -> type[Any]:
    fields: list[tuple[str, Any, Any]] = []
    for key in DEFAULT_FIELDS:
        kind = answered(key) if issubclass(base, Reply) else SETTINGS[key]
        fields.append((key, (kind | None if nullable else kind) | UnsetType, UNSET))
    return cast(
        "type[Any]",
        msgspec.defstruct(name, fields, bases=(base,), kw_only=True, module=__name__),
    )


# What a new assistant takes when its body leaves a setting out (or sends null).
AssistantDefaults = _defaults("AssistantDefaults", Reply, nullable=False)
AssistantDefaultsUpdate = _defaults("AssistantDefaultsUpdate", Body, nullable=True)
AssistantDefaultsUpdate.SCHEMA = {
    "description": "Replaces every default; checked as an assistant's configuration is. null "
    "for one setting: no default."
}

_DEFAULTS_REF = {"$ref": "#/components/schemas/AssistantDefaults"}
DefaultsAnswer = Annotated[object, Meta(extra_json_schema=_DEFAULTS_REF)]
DefaultsBody = Annotated[
    object,
    Meta(
        extra_json_schema={
            "anyOf": [{"$ref": "#/components/schemas/AssistantDefaultsUpdate"}, {"type": "null"}],
            "description": "null: no defaults",
        }
    ),
]

_PER_SECOND = "per second, each node (0: no limit)"


class Limits(Reply, kw_only=True):
    """The organization's limits, set by the operator (0: no limit)."""

    max_concurrent_calls: Annotated[
        int, Meta(description="The organization's calls at once, every node (0: no limit).")
    ]
    max_concurrent_calls_source: Annotated[
        str,
        Meta(
            description="operator: set with voicedock organizations set-limits; "
            "configuration: [[limits.organizations]]."
        ),
    ]
    max_scheduled_calls: Annotated[
        int,
        Meta(
            description="Its calls waiting with scheduled_at, every node (0: no limit); "
            "POST /calls/outbound beyond is 429 Too many scheduled calls."
        ),
    ]
    max_scheduled_calls_source: Annotated[
        str,
        Meta(
            description="operator: set with voicedock organizations set-limits; "
            "configuration: [limits] scheduled_calls_per_organization."
        ),
    ]
    requests_per_second: Annotated[int, Meta(description="API requests " + _PER_SECOND)]
    calls_per_second: Annotated[int, Meta(description="POST /calls/outbound " + _PER_SECOND)]
    key_requests_per_second: Annotated[
        int, Meta(description="API requests per API key " + _PER_SECOND)
    ]
    key_calls_per_second: Annotated[
        int, Meta(description="POST /calls/outbound per API key " + _PER_SECOND)
    ]
    open_streams: Annotated[
        int, Meta(description="Open call event streams, every node (0: no cap but the node's).")
    ]
    open_streams_per_key: Annotated[
        int, Meta(description="Open call event streams per API key, every node.")
    ]
    previews: Annotated[
        int,
        Meta(description="Voice previews under way at once, each node (0: no cap but the node's)."),
    ]
    trunks: Annotated[list[str], Meta(description="The trunks it may call through.")]
    phone_numbers: Annotated[list[str], Meta(description="Its phone numbers (E.164).")]

    @classmethod
    def of(cls, limits: LimitsRecord) -> Limits:
        return msgspec.convert(dataclasses.asdict(limits), cls)


class Organization(Reply, kw_only=True):
    id: str
    name: Annotated[str, Meta(description="The operator's name for it (read-only).")]
    display_name: Annotated[str | None, Meta(description="Its own label; null: none.")] = None
    calling_hours: CallingHoursText | None = None
    assistant_defaults: DefaultsAnswer
    limits: Limits
    ai_disclosure_required: Annotated[
        bool,
        Meta(
            description="The organization requires the AI disclosure on its calls "
            "(docs/compliance.md); it may only add to the operator's requirement."
        ),
    ] = False
    ai_disclosure_required_by_operator: Annotated[
        bool,
        Meta(description="The operator requires it on the organization's calls (read-only)."),
    ] = False
    vocabulary: Annotated[
        Vocabulary | None,
        Meta(
            description="Keyterms and pronunciations for every call of its assistants, after "
            "each assistant's own stt_config.keyterms and tts_config.pronunciations (the "
            "assistant's rule for a word wins); null: none (docs/speech.md)."
        ),
    ] = None
    knowledge_embeddings: Annotated[
        KnowledgeEmbeddings | None,
        Meta(
            description="Its own OpenAI-compatible embeddings endpoint for its knowledge bases, "
            "instead of the operator's: api_key_ref names its provider key, the key itself is "
            "never answered; null: the operator's, if any (docs/knowledge.md)."
        ),
    ] = None
    created_at: Time

    @classmethod
    def of(
        cls, org: OrganizationRecord, limits: LimitsRecord, *, operator_discloses: bool = False
    ) -> Organization:
        return cls(
            id=org.id,
            name=org.name,
            display_name=org.display_name or None,
            calling_hours=org.calling_hours,
            assistant_defaults=msgspec.convert(masked(org.assistant_defaults), AssistantDefaults),
            limits=Limits.of(limits),
            ai_disclosure_required=org.ai_disclosure_required,
            ai_disclosure_required_by_operator=operator_discloses,
            vocabulary=org.vocabulary,
            knowledge_embeddings=org.knowledge_embeddings,
            created_at=iso(org.created_at),
        )


class OrganizationUpdate(Body, kw_only=True):
    display_name: Annotated[DisplayName | None, Meta(description="null: none")] | UnsetType = UNSET
    assistant_defaults: DefaultsBody | UnsetType = UNSET
    ai_disclosure_required: (
        Annotated[
            bool,
            Meta(
                description="true: the organization's calls disclose the AI where the "
                "operator does not require it already; false never lifts the operator's."
            ),
        ]
        | UnsetType
    ) = UNSET
    calling_hours: CallingHoursText | UnsetType | None = UNSET
    vocabulary: (
        Annotated[
            Vocabulary | None,
            Meta(
                description="Replaces the organization's keyterms and pronunciations; null: "
                "none. Existing assistants' calls use it from their next call."
            ),
        ]
        | UnsetType
    ) = UNSET
    knowledge_embeddings: (
        Annotated[
            KnowledgeEmbeddings | None,
            Meta(
                description="Its own OpenAI-compatible embeddings endpoint for its knowledge "
                "bases, instead of the operator's (docs/knowledge.md); null: the operator's. "
                "Documents already uploaded keep the vectors they have: upload them again to "
                "have them found by meaning with the new model."
            ),
        ]
        | UnsetType
    ) = UNSET
    name: OperatorSetting | UnsetType = UNSET
    limits: OperatorSetting | UnsetType = UNSET

    def operators(self) -> list[str]:
        """The operator's fields it sends (none may: 403)."""
        sent = {"name": self.name, "limits": self.limits}
        return [name for name, value in sent.items() if value is not UNSET]


PATHS: dict[str, Schema] = {
    "/organization": {
        "get": operation(
            "Get the API key's organization: its display name, the defaults of its new "
            "assistants and its limits",
            ("200", Organization),
            errors="401",
        ),
        "patch": operation(
            "Set the organization's display name, the defaults of its new assistants, its "
            "calling hours, vocabulary or embeddings endpoint. Needs an admin key (403 "
            "otherwise).",
            ("200", Organization),
            body=OrganizationUpdate,
            errors="400 401 403 413 422",
            description="`name` and `limits` are the operator's (403 `Operator setting`). "
            "`assistant_defaults` replaces every default; a new assistant takes each one it "
            "leaves out (POST /assistants), existing assistants keep theirs. A default's "
            "`api_key_ref` must name a provider key of the organization (422), and where the "
            'operator requires them (`[byok] mode = "required"`) a default naming a cloud '
            "provider must name one (422). `ai_disclosure_required` true makes its calls "
            "disclose the AI (docs/compliance.md); false leaves the operator's requirement "
            "as it is. `vocabulary` (keyterms, pronunciations) applies to every call of its "
            "assistants, after each assistant's own (docs/speech.md). `knowledge_embeddings` "
            "is its own embeddings endpoint for its knowledge bases (docs/knowledge.md): a URL "
            "the operator's egress policy refuses is 400 `URL refused`; its `api_key_ref` must "
            'name a provider key of the organization (422; 403 where `[byok] mode = "off"`).',
        ),
    },
}
MODELS = (Organization, Limits, OrganizationUpdate, AssistantDefaults, AssistantDefaultsUpdate)
