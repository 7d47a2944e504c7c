"""``/calls``: place an outbound call, list and read calls, control a live call, download its
recording (the documented shapes, in the documented order; voicedock's additions after)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from voicedock.api.body import CURSOR_PATTERN, MAX_OFFSET
from voicedock.api.models.assistant_choice import (
    AssistantConfig,
    AssistantOverride,
    DeprecatedConfig,
    DeprecatedOverride,
    SquadMembers,
    assistant_choice,
    config_json,
)
from voicedock.api.models.base import Body, Reply, of_record, parse, schema_name
from voicedock.api.models.billing import Cost
from voicedock.api.models.field_types import (
    E164_PATTERN,
    ID_PATTERN,
    TEXT_MAX,
    TRUE_OR_FALSE,
    AssistantId,
    Destination,
    Identifier,
    IncludeTests,
    Text,
    Time,
    Variables,
    said_as_choice,
    said_as_integer,
    said_as_text,
    text,
)
from voicedock.api.models.operations import Schema, operation, query_operation, ref
from voicedock.api.models.refusals import JSON_OBJECT, Refusal, refusal
from voicedock.api.models.usage import CallUsage
from voicedock.calls import control, json_readers
from voicedock.calls.assistants.config import check_assistant_choice
from voicedock.calls.assistants.squads import check_members
from voicedock.calls.outbound.request import (
    CONTEXT_MAX,
    DEPRECATED_ALIASES,
    METADATA_MAX_BYTES,
    METADATA_MAX_DEPTH,
    METADATA_MAX_KEYS,
    MOMENT_FORMAT,
    RING_TIMEOUT_BOUNDS,
    RING_TIMEOUT_DEFAULT,
    SCHEDULE_MAX_AHEAD,
    SCHEDULE_PAST_TOLERANCE,
    SCHEDULE_WINDOW_DEFAULT,
    OutboundRequest,
    check_metadata,
    moment,
)
from voicedock.domain.flows import FlowProgress
from voicedock.domain.ids import room_name_for
from voicedock.domain.json import JsonObject
from voicedock.domain.records import Call as CallRecord
from voicedock.domain.records import CallEvent, CallMessage, CallStatus, Direction
from voicedock.domain.squads import MAX_MEMBERS, Member, MemberName, involved_json
from voicedock.domain.timestamps import iso
from voicedock.domain.usage import call_usage
from voicedock.errors import BadRequest
from voicedock.validation import require_e164

T = TypeVar("T")
# A call's first words, its context and how long it may ring, as a call and a campaign take them.
FirstMessage = Annotated[Text, said_as_text(TEXT_MAX)]
Context = Annotated[str, text(CONTEXT_MAX), said_as_text(CONTEXT_MAX)]
RingTimeout = Annotated[
    int,
    Meta(ge=RING_TIMEOUT_BOUNDS[0], le=RING_TIMEOUT_BOUNDS[1]),
    said_as_integer(*RING_TIMEOUT_BOUNDS),
]
RING_TIMEOUT = {"default": RING_TIMEOUT_DEFAULT}  # its documented default, beside each description
DateTime = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
Metadata = Annotated[
    dict[str, Any] | None,
    Meta(
        description="The client's own JSON object given when the call was placed, as given; "
        "also in every webhook about the call (beside call_id). null: none."
    ),
]


# A squad sent with the call, not stored: its members as /squads takes them (models/squads.py
# documents SquadMember; calls/assistants/squads.py checks what no schema states).
InlineSquad = Annotated[
    object,
    Meta(
        description="A squad for this call only (docs/squads.md): its members as POST /squads "
        "takes them, the first answering; instead of assistant_id, assistant or squad_id.",
        extra_json_schema={
            "type": "object",
            "properties": {
                "members": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/SquadMember"},
                    "minItems": 1,
                    "maxItems": MAX_MEMBERS,
                }
            },
            "required": ["members"],
            "additionalProperties": False,
        },
    ),
]


class _SentSquad(Body, kw_only=True):
    """An inline squad as it is read (its members as ``/squads`` reads them)."""

    members: SquadMembers


class NamesAssistant(Body, kw_only=True):
    """A body that places calls (``POST /calls/outbound``, ``POST /campaigns``): how it names
    their assistant (``assistant_choice.py``), what it says first and the context it is given."""

    assistant_id: AssistantId | UnsetType = UNSET
    assistant: AssistantConfig | UnsetType = UNSET
    assistant_override: AssistantOverride | UnsetType = UNSET
    squad_id: (
        Annotated[
            Identifier,
            Meta(
                description="The squad whose assistants take the call (each of a campaign's "
                "calls; docs/squads.md): its first member answers, the others as it hands the "
                "call over; instead of assistant_id or assistant."
            ),
        ]
        | UnsetType
    ) = UNSET
    first_message: FirstMessage | None = None
    context: Context | None = None

    def _assistant_request(
        self,
        destination: str,
        used: list[str],
        agent_id: str | UnsetType = UNSET,
        agent: Body | UnsetType = UNSET,
        agent_config: Body | UnsetType = UNSET,
        sent_squad: object = UNSET,
    ) -> OutboundRequest:
        """A call to ``destination`` with the assistant this body names: each field read from
        itself or its deprecated alias (recorded in ``used``), or the squad (its id, or
        ``sent_squad``: one sent with the call), checked (``check_assistant_choice``)."""
        assistant_id = field_or_alias("assistant_id", self.assistant_id, agent_id, used)
        transient = field_or_alias(
            "assistant", config_json(self.assistant), config_json(agent), used
        )
        override = field_or_alias(
            "assistant_override",
            config_json(self.assistant_override),
            config_json(agent_config),
            used,
        )
        squad_id = None if isinstance(self.squad_id, UnsetType) else self.squad_id
        squad = None if sent_squad is UNSET else _inline_members(sent_squad)
        if squad_id is not None and squad is not None:
            raise BadRequest("send either squad_id or squad, not both")
        assistant, assistant_override = assistant_or_squad(
            assistant_id, transient, override, squad_id, sent_squad=squad is not None
        )
        return OutboundRequest(
            destination=destination,
            assistant_id=assistant_id,
            assistant=assistant,
            assistant_override=assistant_override,
            squad_id=squad_id,
            squad=squad,
            first_message=self.first_message,
            context=self.context,
        )


class OutboundCallRequest(NamesAssistant, kw_only=True):
    SCHEMA: ClassVar[Schema] = assistant_choice(
        ("assistant_id", "agent_id"),
        ("assistant", "agent"),
        ("assistant_override", "agent_config"),
        ("squad_id", "squad"),
    )

    REFUSAL: ClassVar[Refusal | None] = JSON_OBJECT

    destination: Annotated[Destination, refusal(reader=require_e164)]
    squad: InlineSquad | UnsetType = UNSET
    number_id: Identifier | None = None
    ring_timeout_seconds: (
        Annotated[
            RingTimeout,
            Meta(
                description="Seconds the call may ring unanswered; then it fails no-answer.",
                extra_json_schema=RING_TIMEOUT,
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    record: (
        Annotated[
            bool,
            Meta(description="Record this call (overrides the assistant's record)."),
            TEXT_MAX,
            TRUE_OR_FALSE,
        ]
        | None
    ) = None
    metadata: (
        Annotated[
            dict[str, Any],
            Meta(
                description="Any JSON object of yours, stored with the call, returned by "
                "GET /calls and in every webhook about it. At most "
                f"{METADATA_MAX_BYTES} bytes as compact JSON, {METADATA_MAX_KEYS} keys in "
                f"all, {METADATA_MAX_DEPTH} levels of nesting (else 400)."
            ),
            refusal("{field} must be a JSON object"),
        ]
        | None
    ) = None
    variables: Variables | None = None
    scheduled_at: (
        Annotated[
            str,
            Meta(
                description="Dial the call then, not now: it is stored as scheduled (201) and "
                "dialed by the node's dialer at that time, under the same limits as every call. "
                "With a time zone; not more than "
                f"{int(SCHEDULE_PAST_TOLERANCE.total_seconds())} s in the past, at most "
                f"{SCHEDULE_MAX_AHEAD.days} days ahead. end-call cancels it. Checked again "
                "when due: a destination the policy refuses then, a number on the do-not-call "
                "list or outside its calling hours then, or a caller number removed "
                "or no longer open to the organization, ends it never dialed (destination-"
                "refused, do-not-call, outside-calling-hours, number-unavailable), as does the "
                "organization's monthly "
                "spending limit reached (spend-limit-reached). 429 Too many scheduled calls "
                "beyond the organization's limit of calls waiting (GET /organization).",
                extra_json_schema={"format": "date-time"},
            ),
            refusal(MOMENT_FORMAT),
        ]
        | None
    ) = None
    latest_at: (
        Annotated[
            str,
            Meta(
                description="With scheduled_at, after it: the call is never dialed later (it "
                "ends schedule-expired). Default: scheduled_at plus "
                f"{int(SCHEDULE_WINDOW_DEFAULT.total_seconds() // 60)} minutes.",
                extra_json_schema={"format": "date-time"},
            ),
            refusal(MOMENT_FORMAT),
        ]
        | None
    ) = None
    agent_id: Annotated[AssistantId, Meta(extra_json_schema={"deprecated": True})] | UnsetType = (
        UNSET
    )
    agent: DeprecatedConfig | UnsetType = UNSET
    agent_config: DeprecatedOverride | UnsetType = UNSET

    def request(self) -> OutboundRequest:
        """The call this body asks for: its deprecated names read as their replacements, what
        no schema states checked (calls/outbound/request.py)."""
        used: list[str] = []
        chosen = self._assistant_request(
            self.destination, used, self.agent_id, self.agent, self.agent_config, self.squad
        )
        return dataclasses.replace(
            chosen,
            number_id=self.number_id,
            ring_timeout_seconds=self.ring_timeout_seconds or RING_TIMEOUT_DEFAULT,
            record=self.record,
            metadata=check_metadata(self.metadata),
            variables=self.variables or {},
            scheduled_at=moment(self.scheduled_at, "scheduled_at"),
            latest_at=moment(self.latest_at, "latest_at"),
            deprecated=tuple(used),
        )


def _inline_members(sent: object) -> tuple[Member, ...]:
    """An inline squad's members, read and checked as a stored squad's (400 naming the
    field)."""
    squad = parse(sent, _SentSquad, "squad")
    try:
        return tuple(check_members([member.member() for member in squad.members]))
    except BadRequest as exc:
        raise BadRequest(f"squad.{exc.message}", error=exc.error) from None


def assistant_or_squad(
    assistant_id: str | None,
    transient: object,
    override: object,
    squad_id: str | None,
    *,
    sent_squad: bool = False,
) -> tuple[JsonObject | None, JsonObject | None]:
    """Which assistant a call or a campaign's calls run with (``check_assistant_choice``),
    or a squad instead (``squad_id``, or ``sent_squad``: one sent with it; then none: 400 when
    one is sent too)."""
    if squad_id is None and not sent_squad:
        return check_assistant_choice(assistant_id, transient, override)
    if assistant_id is not None or transient is not None or override is not None:
        raise BadRequest("send either a squad or an assistant, not both")
    return None, None


def field_or_alias(
    name: str, value: T | UnsetType, alias: T | UnsetType, used: list[str]
) -> T | None:
    """A field as sent, or its deprecated alias (recorded in ``used``), not both; ``None``:
    neither."""
    if alias is UNSET:
        return None if value is UNSET else value
    old = next(old for old, new in DEPRECATED_ALIASES.items() if new == name)
    if value is not UNSET:
        raise BadRequest(f"{old} is a deprecated alias of {name}: send only {name}")
    used.append(old)
    return alias


class OutboundCallResponse(Reply, kw_only=True):
    success: bool
    call_id: str
    status: Annotated[
        Literal["dialing", "scheduled"], Meta(description="scheduled: answered 201 (scheduled_at)")
    ]
    room_name: str | UnsetType = UNSET
    scheduled_at: DateTime | UnsetType = UNSET
    latest_at: DateTime | UnsetType = UNSET

    @classmethod
    def of(
        cls, call_id: str, window: tuple[datetime, datetime] | None = None
    ) -> OutboundCallResponse:
        """The answer to a call placed (``dialing``) or scheduled (in ``window``: when it may
        be dialed, from and until)."""
        if window is None:
            return cls(
                success=True, call_id=call_id, status="dialing", room_name=room_name_for(call_id)
            )
        return cls(
            success=True,
            call_id=call_id,
            status="scheduled",
            room_name=room_name_for(call_id),
            scheduled_at=iso(window[0]),
            latest_at=iso(window[1]),
        )


SQUAD_ID_DESCRIPTION = (
    "The squad the call was placed with (docs/squads.md); null: one assistant, or a squad "
    "sent with the call."
)


class CallSummary(Reply, kw_only=True):
    """A ``GET /calls`` list item."""

    id: str
    caller_phone: str | None
    assistant_phone: str | None
    status: CallStatus
    error: str | None
    started_at: Time
    ended_at: Time
    duration_seconds: int | None
    summary: str | None
    agent_name: str | None
    business_name: str | None
    created_at: Time
    updated_at: Time
    campaign_id: Annotated[
        str | None, Meta(description="The campaign whose contact the call dials.")
    ] = None
    squad_id: Annotated[str | None, Meta(description=SQUAD_ID_DESCRIPTION)] = None
    metadata: Metadata = None
    scheduled_at: Annotated[
        Time, Meta(description="A scheduled call: dialed from then on; else null.")
    ] = None
    latest_at: Annotated[Time, Meta(description="A scheduled call is never dialed after it.")] = (
        None
    )
    cost: Annotated[Cost | None, Meta(description=COST)] = None

    @classmethod
    def of(cls, call: CallRecord) -> CallSummary:
        return of_record(cls, call, cost=Cost.of(call.cost))


class Pagination(Reply, kw_only=True):
    SCHEMA: ClassVar[Schema] = {"additionalProperties": False}

    total: int
    limit: int
    offset: int


class CallList(Reply, kw_only=True):
    calls: list[CallSummary]
    pagination: Pagination
    next_cursor: str | None = None


class Analysis(Reply, kw_only=True):
    summary: Any = None
    sentiment: Any = None
    method: Literal["llm", "heuristic"] | UnsetType = UNSET
    structured_data: dict[str, Any] | UnsetType | None = UNSET
    structured_data_error: str | UnsetType = UNSET
    success_evaluation: str | UnsetType | None = UNSET

    @classmethod
    def of(cls, analysis: JsonObject) -> Analysis:
        """The documented ``summary`` and ``sentiment``, plus how they were made (``method``)
        when the analysis says so, and the analysis plan's results (only when it asked)."""
        extra: dict[str, Any] = {
            key: analysis[key]
            for key in ("structured_data", "structured_data_error", "success_evaluation")
            if key in analysis
        }
        if analysis.get("method") is not None:
            extra["method"] = analysis["method"]
        return cls(summary=analysis.get("summary"), sentiment=analysis.get("sentiment"), **extra)


class Message(Reply, kw_only=True):
    role: Annotated[
        object,
        Meta(
            extra_json_schema={
                "description": "assistant, user, or supervisor: what a supervisor listening to "
                "the call typed to the assistant (a whisper, docs/live-listen.md); the caller "
                "never heard it."
            }
        ),
    ] = None
    content: Any = None
    member: (
        Annotated[
            str,
            Meta(
                description="A call placed with a squad (docs/squads.md): the member whose "
                "turn it was (who said it, or heard the caller say it)."
            ),
        ]
        | UnsetType
    ) = UNSET
    language: (
        Annotated[
            str,
            Meta(
                description="An assistant with languages (docs/speech.md): the language the "
                "message was said in, a BCP 47 primary tag such as de (the caller's, as "
                "detected; the assistant's reply follows it)."
            ),
        ]
        | UnsetType
    ) = UNSET
    flow_node: (
        Annotated[
            str,
            Meta(
                description="An assistant with a flow (docs/flows.md): the node the call was "
                "in as the message ended."
            ),
        ]
        | UnsetType
    ) = UNSET


class Timings(Reply, kw_only=True):
    media_connected_ms: Annotated[
        int | None,
        Meta(
            description="The answer → the call's media connected (the media leg up and bridged "
            "with the callee): audio written from then on reaches them."
        ),
    ] = None
    first_audio_ms: Annotated[
        int | None,
        Meta(
            description="The answer → the assistant's first audio written to the media leg (the "
            "greeting, when there is a first message); null: nothing was said."
        ),
    ] = None


class Consent(Reply, kw_only=True):
    """The assistant's consent plan's outcome (docs/privacy.md)."""

    mode: Literal["announce", "opt_out_keypad", "opt_in_keypad"] | UnsetType = UNSET
    outcome: (
        Annotated[
            Literal["announced", "accepted", "refused", "no_answer"],
            Meta(
                description="announced: said (announce); accepted: recorded (the opt-out "
                "window passed without the key, or the opt-in key pressed); refused: the "
                "opt-out key pressed, not recorded; no_answer: no opt-in key, not recorded."
            ),
        ]
        | UnsetType
    ) = UNSET
    at: Annotated[str, Meta(description="When it was decided (ISO 8601).")] | UnsetType = UNSET


class AiDisclosure(Reply, kw_only=True):
    """How the call gave the AI disclosure the operator or its organization requires
    (docs/compliance.md)."""

    required_by: Annotated[
        Literal["operator", "organization"],
        Meta(description="Who requires it: the operator's configuration, or the organization."),
    ]
    method: Annotated[
        Literal["first_message", "spoken"],
        Meta(
            description="first_message: the assistant's opening (its consent message or first "
            "message) holds one of the disclosure's phrases; spoken: voicedock said the "
            "operator's disclosure before the assistant talked."
        ),
    ]
    said: Annotated[
        bool,
        Meta(
            description="The call's first assistant message, as the caller heard it, holds "
            "the disclosure (false: the call ended, or the caller cut it, before)."
        ),
    ]
    at: Annotated[
        str | None, Meta(description="When that message started (ISO 8601); null: not said.")
    ] = None


class CallerAttestation(Reply, kw_only=True):
    """An inbound caller's STIR/SHAKEN attestation as the carrier sent it in the INVITE; its
    signature is not verified by voicedock (docs/compliance.md)."""

    attest: Annotated[
        Literal["A", "B", "C"] | None,
        Meta(description="The Identity header's PASSporT attest claim; null: none sent."),
    ] = None
    origid: Annotated[
        str | None, Meta(description="The PASSporT's origination id (a UUID); null: none.")
    ] = None
    verstat: Annotated[
        Literal["TN-Validation-Passed", "TN-Validation-Failed", "No-TN-Validation"] | None,
        Meta(
            description="The verstat parameter of P-Asserted-Identity (or From): the "
            "carrier's verification result; null: none sent."
        ),
    ] = None


class AnsweringMachine(Reply, kw_only=True):
    result: (
        Annotated[
            Literal["human", "machine", "unknown", "screening"],
            Meta(description="screening: a call-screening assistant answered."),
        ]
        | UnsetType
    ) = UNSET
    evidence: (
        Annotated[
            dict[str, Any],
            Meta(
                description="reason, decided_at_ms, initial_silence_ms, greeting_ms, beep_at_ms "
                "(ms of the callee's audio); message_at_ms when a message was left; "
                "screening_outcome (waiting, answered, declined, timeout) and answered_at_ms "
                "after a screener."
            ),
        ]
        | UnsetType
    ) = UNSET


COST = (
    "What the call cost by its organization's rate card, rated once when it ended "
    "(docs/billing.md); null: not answered, no rate card, or not ended yet."
)


def _described(description: str) -> Meta:
    return Meta(description=description)


class InvolvedMember(Reply, kw_only=True):
    member: Annotated[str, Meta(description="The squad's member (docs/squads.md)")]
    assistant_id: Annotated[str | None, Meta(description="Its saved assistant (null: inline)")]
    agent_name: Annotated[str | None, Meta(description="Its assistant's name")]


@schema_name("Call")
class CallReply(Reply, kw_only=True):
    """Every field of the documented ``GET /calls/{id}`` example, then voicedock's additions."""

    id: str
    caller_phone: str | None = None
    assistant_phone: str | None = None
    status: CallStatus
    error: str | None = None
    started_at: Time = None
    ended_at: Time = None
    duration_seconds: int | None = None
    summary: str | None = None
    agent_name: str | None = None
    business_name: str | None = None
    created_at: Time
    updated_at: Time = None
    analysis_result: Analysis | None = None
    messages: list[Message]
    agent_id: str | None = None
    number_id: str | None = None
    phone_number: str | None = None
    # additions beyond the documented example
    direction: Direction
    end_reason: Annotated[
        str | None,
        _described(
            'Why the call ended; "cancelled": end-call before answer; of a scheduled call '
            'never dialed: "schedule-expired", "destination-refused", "do-not-call", '
            '"outside-calling-hours", "number-unavailable", "spend-limit-reached"; '
            'after a call-screening assistant: "screening-declined", "screening-timeout"; '
            'nobody picked up behind a phone menu (phone_menu): "phone-menu-timeout".'
        ),
    ] = None
    transferred_to: str | None = None
    transferred_at: Time = None
    node: Annotated[str | None, _described("The voicedock node serving the call ([node] id).")] = (
        None
    )
    campaign_id: Annotated[
        str | None,
        _described("The campaign whose contact the call dials (also in the list)."),
    ] = None
    squad_id: Annotated[str | None, _described(SQUAD_ID_DESCRIPTION)] = None
    squad_version: Annotated[
        int | None,
        _described("The version of the squad it was placed with (GET /squads/{id}/versions)."),
    ] = None
    members: Annotated[
        list[InvolvedMember] | None,
        _described(
            "A call placed with a squad: the members that had it, in the order they first "
            "had it (the first answers); null: one assistant."
        ),
    ] = None
    metadata: Metadata = None
    scheduled_at: Annotated[
        Time, _described("A scheduled call: dialed from then on; else null.")
    ] = None
    latest_at: Annotated[Time, _described("A scheduled call is never dialed after it.")] = None
    pbx: Annotated[
        str | None,
        _described(
            "The PBX server carrying the call ([[pbx.asterisk.servers]] name); null with one PBX."
        ),
    ] = None
    api_key_id: Annotated[
        str | None,
        _described("The API key that placed the call (see /api-keys); null inbound."),
    ] = None
    assistant_version: Annotated[
        int | None,
        _described(
            "The version of its saved assistant it ran (GET /assistants/{id}/versions); null: "
            "an inline assistant, or a call placed before versions."
        ),
    ] = None
    latency: list[Any] = msgspec.field(default_factory=list)
    timings: Annotated[
        Timings | None,
        _described(
            "The media leg after the answer, in ms from the answer as voicedock learnt it "
            "(started_at); null: not answered, or no media."
        ),
    ] = None
    recording_url: Annotated[
        str | None,
        _described("GET it (same API key) for the call's recording; null: none."),
    ] = None
    recording_duration_seconds: float | None = None
    answering_machine: AnsweringMachine | None = None
    consent: Annotated[
        Consent | None,
        _described(
            "The consent plan's outcome; null: no plan, or the call ended before its message "
            "was said."
        ),
    ] = None
    ai_disclosure: Annotated[
        AiDisclosure | None,
        _described(
            "How the call gave its required AI disclosure; null: none required, or the call "
            "was not answered."
        ),
    ] = None
    flow: Annotated[
        FlowProgress | None,
        _described(
            "An assistant with a flow (docs/flows.md): its node now (live) or last, the nodes "
            "it went through and the fields extracted; null: no flow."
        ),
    ] = None
    caller_attestation: Annotated[
        CallerAttestation | None,
        _described(
            "An inbound call's STIR/SHAKEN attestation as the carrier sent it (not verified); "
            "null: none sent, or an outbound call."
        ),
    ] = None
    usage: Annotated[
        CallUsage | None,
        _described("What the call used: connected and billable time, speech providers."),
    ] = None
    cost: Annotated[Cost | None, _described(COST)] = None
    provider_switches: Annotated[
        int | None,
        _described(
            "Times a turn moved on to the next entry of a fallback plan (its provider-switch "
            "events); null: no conversation recorded it."
        ),
    ] = None
    events: Annotated[
        list[dict[str, Any]],
        _described(
            "The call's timeline ({type, data, created_at}). A transcript event's data has role, "
            "content, started_at, ended_at, interrupted: the first assistant one's started_at "
            "minus the call's started_at is how long the callee waited for the greeting after "
            "answering."
        ),
    ] = msgspec.field(default_factory=list)

    @classmethod
    def of(
        cls, call: CallRecord, messages: list[CallMessage], events: list[CallEvent]
    ) -> CallReply:
        analysis = call.analysis_result
        machine = call.answering_machine
        return of_record(
            cls,
            call,
            analysis_result=None if analysis is None else Analysis.of(analysis),
            messages=[
                Message(
                    role=m.role,
                    content=m.content,
                    member=m.member or UNSET,
                    language=m.language or UNSET,
                    flow_node=m.flow_node or UNSET,
                )
                for m in messages
            ],
            agent_id=call.assistant_id,
            phone_number=call.assistant_phone,
            node=call.owner_node,
            timings=None if call.timings is None else msgspec.convert(call.timings, Timings),
            answering_machine=None
            if machine is None
            else msgspec.convert(machine, AnsweringMachine),
            consent=None if call.consent is None else msgspec.convert(call.consent, Consent),
            ai_disclosure=_converted(call.ai_disclosure, AiDisclosure),
            flow=call.flow,
            caller_attestation=_converted(call.caller_attestation, CallerAttestation),
            usage=msgspec.convert(call_usage(call, messages), CallUsage),
            members=msgspec.convert(
                involved_json(call.squad, messages), list[InvolvedMember] | None
            ),
            cost=Cost.of(call.cost),
            events=[
                {"type": e.type, "data": e.data, "created_at": iso(e.created_at)} for e in events
            ],
        )


R = TypeVar("R", bound=Reply)


def _converted(record: msgspec.Struct | None, reply_type: type[R]) -> R | None:
    """A typed part of the call record as its reply."""
    return None if record is None else msgspec.convert(msgspec.to_builtins(record), reply_type)


class InjectContext(Body, kw_only=True):
    type: Literal["inject-context"]
    content: Annotated[Text, said_as_text(required=True)]
    trigger_response: Annotated[bool, TRUE_OR_FALSE] | UnsetType = UNSET
    source: Annotated[
        Literal["api", "supervisor"] | UnsetType,
        Meta(
            description="supervisor: a supervisor's whisper (docs/live-listen.md), stored in "
            "the transcript as a message of role supervisor; api (the default): context only."
        ),
        said_as_choice("api", "supervisor"),
    ] = UNSET

    def command(self) -> control.InjectContext:
        return control.InjectContext(
            self.content,
            trigger_response=self.trigger_response is True,
            source="supervisor" if self.source == "supervisor" else "api",
        )


class Say(Body, kw_only=True):
    type: Literal["say"]
    content: Annotated[Text, said_as_text(required=True)]

    def command(self) -> control.Say:
        return control.Say(self.content)


class EndCall(Body, kw_only=True):
    """Ends an answered call; cancels a call still connecting."""

    SCHEMA: ClassVar[Schema] = {"not": {"required": ["message", "content"]}}  # one of them

    type: Literal["end-call"]
    message: Annotated[Text, said_as_text()] | UnsetType = UNSET
    content: (
        Annotated[Text, Meta(description="The same as message (send one of them)."), said_as_text()]
        | UnsetType
    ) = UNSET

    def command(self) -> control.EndCall:
        if self.message is not UNSET and self.content is not UNSET:
            raise BadRequest("send the final message as message or content, not both")
        return control.EndCall(self.message or self.content or None)


class Transfer(Body, kw_only=True):
    type: Literal["transfer"]
    # Either form (msgspec checks one pattern per string: calls/control.py reads which).
    destination: Annotated[
        str,
        Meta(
            extra_json_schema={
                "anyOf": [
                    {"pattern": E164_PATTERN, "example": "+31612345678"},
                    {"pattern": ID_PATTERN},
                ]
            }
        ),
        said_as_text(control.TRANSFER_TARGET_MAX, line=True, required=True),
    ]
    announcement: Annotated[Text, said_as_text(TEXT_MAX)] | UnsetType = UNSET
    mode: (
        Annotated[Literal["blind", "warm"], said_as_choice(*control.TRANSFER_MODES)] | UnsetType
    ) = UNSET
    summary: Annotated[Text, said_as_text()] | UnsetType = UNSET

    def command(self) -> control.Transfer:
        return control.Transfer(
            control.transfer_target(self.destination),
            announcement=self.announcement or None,
            mode=self.mode or "blind",
            summary=self.summary or None,
        )


class Handoff(Body, kw_only=True):
    """The call goes on with another assistant of its squad (docs/squads.md), once what is
    being said was said: the ``member`` named, or the member whose saved assistant is
    ``assistant_id``. 409 for a call placed without a squad, 422 for a member it has not."""

    SCHEMA: ClassVar[Schema] = {"oneOf": [{"required": ["member"]}, {"required": ["assistant_id"]}]}

    type: Literal["handoff"]
    member: MemberName | UnsetType = UNSET
    assistant_id: AssistantId | UnsetType = UNSET

    def command(self) -> control.Handoff:
        member = None if isinstance(self.member, UnsetType) else self.member
        assistant_id = None if isinstance(self.assistant_id, UnsetType) else self.assistant_id
        if (member is None) == (assistant_id is None):
            raise BadRequest("send member or assistant_id (one of them)")
        return control.Handoff(member=member, assistant_id=assistant_id)


Command = InjectContext | Say | EndCall | Transfer | Handoff
COMMANDS: dict[str, type[Command]] = {
    "inject-context": InjectContext,
    "say": Say,
    "end-call": EndCall,
    "transfer": Transfer,
    "handoff": Handoff,
}


def control_command(body: object) -> control.ControlCommand:
    """A ``POST /calls/{id}/control`` body as the command it is: read by the model its
    ``type`` names."""
    kind = json_readers.require_object(body).get("type")
    if kind is None:
        raise BadRequest(f"type is required: one of {', '.join(COMMANDS)}")
    model = COMMANDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise BadRequest(f"unknown command type; use one of {', '.join(COMMANDS)}")
    return parse(body, model).command()


class ControlResponse(Reply, kw_only=True):
    SCHEMA: ClassVar[Schema] = {"additionalProperties": False}

    success: bool
    message: str


# A list paged by cursor: where the next page starts (``api/body.py`` ``encode_cursor``).
Cursor = Annotated[
    str,
    Meta(
        pattern=CURSOR_PATTERN,
        description="next_cursor of the previous page, unchanged (empty: the first page)",
    ),
]


class PageQuery(Body, kw_only=True):
    """A paged list's query: its page size and where it starts."""

    limit: Annotated[int, Meta(ge=1, le=1000)] = 100
    offset: Annotated[int, Meta(ge=0, le=MAX_OFFSET)] = 0


class OldestFirstPageQuery(PageQuery, kw_only=True):
    """A query of a list paged oldest first by cursor (the id of a full page's last record)."""

    cursor: (
        Annotated[
            str,
            Meta(
                max_length=80,
                description="next_cursor of the previous page, unchanged (empty: the first page)",
            ),
        ]
        | UnsetType
    ) = UNSET


class CallListQuery(PageQuery, kw_only=True):
    """``GET /calls``'s query."""

    status: (
        Annotated[
            CallStatus,
            _described(
                'A call the outbound response calls "dialing" is connecting until answered; '
                "scheduled: waiting for its scheduled_at."
            ),
        ]
        | UnsetType
    ) = UNSET
    start_date: Annotated[str, Meta(extra_json_schema={"format": "date-time"})] | UnsetType = UNSET
    end_date: Annotated[str, Meta(extra_json_schema={"format": "date-time"})] | UnsetType = UNSET
    campaign_id: (
        Annotated[
            str,
            Meta(
                pattern=ID_PATTERN,
                description="Only the calls this campaign placed (one per attempt of each "
                "contact).",
            ),
        ]
        | UnsetType
    ) = UNSET
    include_tests: IncludeTests | UnsetType = UNSET
    cursor: Cursor | UnsetType = UNSET


_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[!-~]+$"},
    "description": "A replay returns the first response and places no second call.",
}
_TRACEPARENT = {
    "name": "traceparent",
    "in": "header",
    "schema": {"type": "string", "maxLength": 55},
    "description": "W3C trace context: with [telemetry] traces on, the call's trace is a "
    "child of this one (docs/tracing.md). Ignored when traces are off or it is not valid.",
}


def _outbound() -> Schema:
    op = operation(
        "Initiate outbound call",
        ("200", OutboundCallResponse),
        body=OutboundCallRequest,
        params=[_IDEMPOTENCY, _TRACEPARENT],
        errors="400 401 402 403 404 413 422 429 503",
    )
    op["responses"]["201"] = {
        "description": "A scheduled call (scheduled_at), stored to be dialed at its time",
        "content": {"application/json": {"schema": ref(OutboundCallResponse)}},
    }
    op["responses"]["503"]["description"] = (
        "PBX unavailable; the node at capacity (Node at capacity) or stopping with no other "
        "node to take the call (Node draining), nothing stored: retry after Retry-After; or "
        "the database for now (Retry-After)"
    )
    op["responses"]["503"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return op


PATHS: dict[str, Schema] = {
    "/calls": {
        "get": query_operation(
            "List calls",
            CallList,
            CallListQuery,
        ),
    },
    "/calls/outbound": {"post": _outbound()},
    "/calls/{id}": {
        "get": operation("Get call by ID", ("200", CallReply), errors="401 404"),
    },
    "/calls/{id}/recording": {
        "get": operation(
            "Download the call's recording",
            ("200", None),
            errors="401 404",
            description="WAV or FLAC, stereo: caller left, assistant right. Range requests are "
            "answered 206. 404 when the call has no recording or it was deleted (retention).",
        ),
    },
    "/calls/{id}/control": {
        "post": operation(
            "Send control command to active call",
            ("200", ControlResponse),
            body="ControlCommand",
            errors="400 401 402 403 404 409 413 429 503",
        ),
    },
}
MODELS = (
    OutboundCallRequest,
    OutboundCallResponse,
    CallList,
    CallReply,
    ControlResponse,
    CallListQuery,
)
UNIONS: dict[str, tuple[type[Body], ...]] = {"ControlCommand": tuple(COMMANDS.values())}
