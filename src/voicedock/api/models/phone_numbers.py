"""``/phone-numbers`` (the operator's numbers an organization answers on: it sets their label
and assistant) and ``/trunks`` (those open to the organization)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Annotated, ClassVar

from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.assistant_versions import TrafficShareBody
from voicedock.api.models.assistants import TrafficShare
from voicedock.api.models.base import Body, RecordReply, Reply, of_record
from voicedock.api.models.field_types import E164, Identifier, Time, text
from voicedock.api.models.operations import PATH_ID, Schema, error_response, operation
from voicedock.api.models.refusals import JSON_OBJECT, Refusal
from voicedock.domain.assistant_config import LANGUAGE_TAG_PATTERN
from voicedock.domain.number_health import NumberHealth as NumberHealthRecord
from voicedock.domain.records import PhoneNumber as NumberRecord
from voicedock.domain.records import Trunk as TrunkRecord
from voicedock.domain.records import utcnow
from voicedock.domain.timestamps import iso
from voicedock.domain.traffic_split import SHARES

REST_HOURS_MAX = 720
_SPLIT = (
    "Inbound calls to the number split between versions of its assistant by the caller's "
    "number, each version for its weight (each caller always the same one), instead of the "
    "assistant's own split (docs/assistant-versions.md); null: the assistant's."
)

LANGUAGE_DESCRIPTION = (
    "The language inbound calls to the number open in (a BCP 47 primary tag such as de): the "
    "greeting is that language's first_message among the assistant's languages, in its voice; "
    "null: the caller's number says, by languages[].calling_codes. docs/speech.md (Languages)."
)

# The operator's (voicedock numbers): named so that a client learns it, refused with 403.
OperatorSetting = Annotated[
    object,
    Meta(
        extra_json_schema={
            "description": "The operator's (voicedock numbers): 403 Operator setting"
        }
    ),
]


class NumberHealth(Reply, kw_only=True):
    """What became of the outbound calls made from the number lately ([number_health] of the
    operator: docs/api.md, Phone numbers' health), as of its last call's end."""

    window_hours: Annotated[int, Meta(description="The calls of these last hours count.")]
    as_of: Time = None
    calls: Annotated[
        int,
        Meta(
            description="Outbound calls made from it in the window that ended answered or not "
            "answered by the callee's side (busy, no-answer, rejected); test calls, calls "
            "cancelled or failed on our side apart."
        ),
    ]
    answered: int
    short_calls: Annotated[
        int, Meta(description="Answered and over within [number_health] short_call_seconds.")
    ]
    voicemails: Annotated[int, Meta(description="Answered by a machine (end_reason voicemail).")]
    answer_rate: Annotated[float | None, Meta(description="answered / calls; null: no calls.")]
    short_call_rate: Annotated[
        float | None, Meta(description="short_calls / answered; null: none answered.")
    ]
    voicemail_rate: Annotated[
        float | None, Meta(description="voicemails / answered; null: none answered.")
    ]
    healthy: Annotated[
        bool | None,
        Meta(
            description="What these outcomes say: false when the answer rate is under the "
            "operator's floor over at least its min_calls; null: too few calls to tell."
        ),
    ]

    @classmethod
    def of(cls, health: NumberHealthRecord | None) -> NumberHealth | None:
        if health is None:
            return None
        o = health.outcomes
        return cls(
            window_hours=health.window_hours,
            as_of=iso(health.as_of),
            calls=o.calls,
            answered=o.answered,
            short_calls=o.short_calls,
            voicemails=o.voicemails,
            answer_rate=o.answer_rate(),
            short_call_rate=o.short_call_rate(),
            voicemail_rate=o.voicemail_rate(),
            healthy=health.healthy,
        )


class PhoneNumber(RecordReply[NumberRecord], kw_only=True):
    id: str
    number: E164
    trunk: str
    max_concurrent_calls: int
    assistant_id: str | None = None
    label: str = ""
    squad_id: Annotated[
        str | None,
        Meta(
            description="The squad that answers inbound calls to the number (docs/squads.md), "
            "instead of assistant_id; null: none."
        ),
    ] = None
    language: Annotated[str | None, Meta(description=LANGUAGE_DESCRIPTION)] = None
    traffic_split: Annotated[list[TrafficShare] | None, Meta(description=_SPLIT)] = None
    health: Annotated[
        NumberHealth | None,
        Meta(description="Its outbound calls' outcomes lately; null: none ended yet."),
    ] = None
    flagged_at: Annotated[
        str | None,
        Meta(
            description="When its answer rate fell under the operator's floor (the "
            "phone-number-health webhook); null: not flagged. A flagged number is taken "
            "after the healthy ones.",
            extra_json_schema={"format": "date-time"},
        ),
    ] = None
    resting_until: Annotated[
        str | None,
        Meta(
            description="Until then no call is made from it unless a request names it "
            "(number_id): flagged with the operator's rest_hours, or rested by POST "
            "/phone-numbers/{id}/rest; its calls count from then. null: not resting.",
            extra_json_schema={"format": "date-time"},
        ),
    ] = None
    last_used_at: Time = None
    created_at: Time = None
    updated_at: Time = None

    @classmethod
    def of(cls, record: NumberRecord) -> PhoneNumber:
        return of_record(cls, record, health=NumberHealth.of(record.health))


class PhoneNumberList(Reply, kw_only=True):
    phone_numbers: list[PhoneNumber]


# The fields sent change the number's label and assistant (null: none); the others are the
# operator's (403).
class PhoneNumberUpdate(Body, kw_only=True):
    DEFAULTS: ClassVar[dict[str, None]] = {
        "assistant_id": None,
        "label": None,
        "squad_id": None,
        "language": None,
        "traffic_split": None,
    }
    REFUSAL: ClassVar[Refusal | None] = JSON_OBJECT

    assistant_id: Identifier | UnsetType | None = UNSET
    squad_id: Identifier | UnsetType | None = UNSET
    label: Annotated[
        Annotated[str, text(200, line=True)] | UnsetType | None, Meta(description="null: no label")
    ] = UNSET
    language: Annotated[
        Annotated[str, Meta(pattern=LANGUAGE_TAG_PATTERN)] | UnsetType | None,
        Meta(description=LANGUAGE_DESCRIPTION),
    ] = UNSET
    traffic_split: Annotated[
        Annotated[list[TrafficShareBody], Meta(min_length=SHARES[0], max_length=SHARES[1])]
        | UnsetType
        | None,
        Meta(description=f"{_SPLIT} A new assistant_id without it: none."),
    ] = UNSET
    number: OperatorSetting | UnsetType = UNSET
    trunk: OperatorSetting | UnsetType = UNSET
    max_concurrent_calls: OperatorSetting | UnsetType = UNSET

    def operators(self) -> list[str]:
        """The operator's fields it sends (none may: 403)."""
        sent = {
            "number": self.number,
            "trunk": self.trunk,
            "max_concurrent_calls": self.max_concurrent_calls,
        }
        return [name for name, value in sent.items() if value is not UNSET]

    def applied(self, number: NumberRecord) -> NumberRecord:
        """``number`` with the label, assistant, squad, language and split this body sends (a
        split is of its assistant's versions: another assistant, none unless sent)."""
        assistant_id = number.assistant_id if self.assistant_id is UNSET else self.assistant_id
        split = self.traffic_split
        if isinstance(split, UnsetType):
            shares = number.traffic_split if assistant_id == number.assistant_id else None
        else:
            shares = None if split is None else [s.share() for s in split]
        return dataclasses.replace(
            number,
            traffic_split=shares,
            assistant_id=assistant_id,
            label=number.label if self.label is UNSET else self.label or "",
            squad_id=number.squad_id if self.squad_id is UNSET else self.squad_id,
            language=number.language if self.language is UNSET else self.language,
            updated_at=utcnow(),
        )


class NumberRest(Body, kw_only=True):
    """How long the number rests from now (``POST /phone-numbers/{id}/rest``)."""

    REFUSAL: ClassVar[Refusal | None] = JSON_OBJECT

    hours: Annotated[
        int,
        Meta(
            ge=0,
            le=REST_HOURS_MAX,
            description="No call is made from the number for this many hours unless a request "
            "names it (number_id), and its calls count from then on (resting_until). 0: back "
            "in the pool now, its flag cleared, its calls counted from now.",
        ),
    ]

    def applied(self, number: NumberRecord, now: datetime) -> NumberRecord:
        """``number`` resting ``hours`` from ``now`` (0: not resting, not flagged)."""
        if self.hours == 0:
            return dataclasses.replace(
                number, flagged_at=None, resting_until=None, health_since=now
            )
        until = now + timedelta(hours=self.hours)
        return dataclasses.replace(number, resting_until=until, health_since=until)


class Trunk(Reply, kw_only=True):
    name: str
    endpoint: str | UnsetType = UNSET
    codec: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    pbx: Annotated[
        str | None, Meta(description="The PBX server carrying the trunk; null with one PBX.")
    ] = None

    @classmethod
    def of(cls, t: TrunkRecord) -> Trunk:
        return of_record(cls, t, endpoint=t.pbx_endpoint, pbx=t.pbx or None)


class TrunkList(Reply, kw_only=True):
    trunks: list[Trunk]


def _operators_numbers(
    summary: str, description: str, params: list[Schema] | None = None
) -> Schema:
    """A phone-number route that no API key may use: it answers 403 (or 404 / 401)."""
    op = operation(summary, ("403", None), params=params, errors="401 404" if params else "401")
    op["responses"]["403"] = error_response(
        "403", "Operator setting: phone numbers are created, moved and removed by the operator"
    )
    return {**op, "description": description}


PATHS: dict[str, Schema] = {
    "/phone-numbers": {
        "get": operation(
            "List the organization's phone numbers", ("200", PhoneNumberList), errors="401"
        ),
        "post": _operators_numbers(
            "Register a phone number: refused, numbers are the operator's",
            "Every API key gets 403 `Operator setting` and nothing is stored: the operator adds "
            "numbers with `[[numbers]]` in the configuration or `voicedock numbers add`.",
        ),
    },
    "/phone-numbers/{id}": {
        "get": operation("Get a phone number", ("200", PhoneNumber), errors="401 404"),
        "patch": operation(
            "Set a phone number's label or assistant",
            ("200", PhoneNumber),
            body=PhoneNumberUpdate,
            errors="400 401 403 404 413 422",
            description="`label` and `assistant_id` (one of the organization's assistants, "
            "else 422) only; `number`, `trunk` and `max_concurrent_calls` are the operator's "
            "(403 `Operator setting`). Another organization's number is 404.",
        ),
        "delete": _operators_numbers(
            "Delete a phone number: refused, numbers are the operator's",
            "403 `Operator setting` for the organization's own number (the operator removes it "
            "with `voicedock numbers remove`); 404 for any other id.",
            params=[PATH_ID],
        ),
    },
    "/phone-numbers/{id}/rest": {
        "post": operation(
            "Rest a phone number: no call is made from it for a while (or put it back now)",
            ("200", PhoneNumber),
            body=NumberRest,
            errors="400 401 404 413",
            description="A number carriers may be labelling spam (flagged by its answer rate, "
            "the phone-number-health webhook; docs/api.md) rests: calls take the "
            "organization's other numbers. hours 0 ends a rest and clears the flag.",
        ),
    },
    "/trunks": {
        "get": operation(
            "List the trunks open to the organization",
            ("200", TrunkList),
            errors="401",
            description="Trunks are defined in the configuration. Listed: those whose "
            "`organizations` name the caller's organization, and those without a list that "
            "carry one of its numbers.",
        )
    },
    "/trunks/{name}": {
        "get": operation(
            "Get a trunk open to the organization (else 404)",
            ("200", Trunk),
            errors="401 404",
        ),
    },
}
MODELS = (
    NumberHealth,
    NumberRest,
    PhoneNumber,
    PhoneNumberList,
    PhoneNumberUpdate,
    Trunk,
    TrunkList,
)
