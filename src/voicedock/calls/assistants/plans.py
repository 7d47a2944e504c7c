"""An assistant's plans: what the caller hears while a tool or the LLM is slow (``tool_filler``,
``llm_filler``), its keypad (``keypad``) and whether inbound calls ask the organization's
server first (``assistant_request``). One typed model each: the API documents it
(``api/models/assistants.py``), a call reads its stored plan as it (``plan``).

``check_config`` (``calls/assistants/config.py``) checks a plan when an assistant is saved
or a call placed, with the messages the API documents; a setting it leaves out is ``UNSET``
here (its default applies), a null one ``None`` where null means something (no LLM filler,
no terminator).
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

from voicedock.calls.assistants.config import (
    DEFAULT_LLM_FILLER_DELAY_S,
    DEFAULT_LLM_FILLER_MESSAGES,
    KEYPAD_DEFAULTS,
    KEYPAD_MAX_DIGITS,
    KEYPAD_TERMINATORS,
    KEYPAD_TIMEOUT,
    LLM_FILLER_DELAY,
    LLM_FILLER_MESSAGES,
    TOOL_FILLER_MESSAGE_MAX,
)
from voicedock.domain.json import JsonValue
from voicedock.validation import WHITESPACE


class Plan(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A plan's settings: any other key is refused."""


P = TypeVar("P", bound=Plan)


def plan(value: JsonValue, kind: type[P]) -> P | None:
    """A stored plan (checked when it was saved) as its model; None without one."""
    if value is None:
        return None
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError:
        return None  # not a plan this node knows: its defaults apply


class ToolFiller(Plan, kw_only=True):
    message: (
        Annotated[
            str,
            Meta(
                max_length=TOOL_FILLER_MESSAGE_MAX,
                description="Said while a tool runs longer than delay_seconds; empty: nothing "
                "is said.",
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    delay_seconds: Annotated[float, Meta(ge=0, le=10)] | UnsetType | None = UNSET


class LlmFiller(Plan, kw_only=True):
    """A slow LLM: the caller hears a short phrase, then the reply (pipeline assistants; not
    with xai_realtime). In the transcript as an assistant message of its own, never in the
    model's context. docs/speech.md."""

    delay_seconds: (
        Annotated[
            float,
            Meta(
                ge=LLM_FILLER_DELAY[0],
                le=LLM_FILLER_DELAY[1],
                description="Seconds after the caller's turn ended without the reply's first "
                "sentence before the filler is said; null: no filler.",
                extra_json_schema={"default": DEFAULT_LLM_FILLER_DELAY_S},
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    messages: (
        Annotated[
            list[
                Annotated[
                    str,
                    Meta(
                        min_length=1,
                        max_length=LLM_FILLER_MESSAGES[1],
                        pattern=f"[^{WHITESPACE}]",  # not blank
                    ),
                ]
            ],
            Meta(
                min_length=1,
                max_length=LLM_FILLER_MESSAGES[0],
                description="The phrases, one per slow turn, taken in turn.",
                extra_json_schema={"default": list(DEFAULT_LLM_FILLER_MESSAGES)},
            ),
        ]
        | UnsetType
        | None
    ) = UNSET


KeypadTerminator = Literal["#", "*"]
assert get_args(KeypadTerminator) == KEYPAD_TERMINATORS


class Keypad(Plan, kw_only=True):
    """The caller's keypad: the keys of one entry become one user turn, "Keypad: 1234#",
    answered like a spoken one; each key barges in like speech. Without a plan, the defaults
    apply. docs/keypad.md."""

    enabled: (
        Annotated[
            bool,
            Meta(
                description="false: the caller's keys are ignored (no barge-in by key, never "
                "given to the model), for a line whose keys are not the caller's.",
                extra_json_schema={"default": KEYPAD_DEFAULTS["enabled"]},
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    timeout_seconds: (
        Annotated[
            float,
            Meta(
                ge=KEYPAD_TIMEOUT[0],
                le=KEYPAD_TIMEOUT[1],
                description="The entry ends this long after the last key pressed.",
                extra_json_schema={"default": KEYPAD_DEFAULTS["timeout_seconds"]},
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    terminator: (
        Annotated[
            KeypadTerminator,
            Meta(
                description="The key that ends the entry (kept in it); null: none.",
                extra_json_schema={"default": KEYPAD_DEFAULTS["terminator"]},
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    max_digits: (
        Annotated[
            int,
            Meta(
                ge=KEYPAD_MAX_DIGITS[0],
                le=KEYPAD_MAX_DIGITS[1],
                description="The entry ends with this many keys.",
                extra_json_schema={"default": KEYPAD_DEFAULTS["max_digits"]},
            ),
        ]
        | UnsetType
        | None
    ) = UNSET


class AssistantRequest(Plan, kw_only=True):
    """Inbound calls to this assistant's numbers first ask the organization's server
    (assistant-request webhook); this assistant answers when it gives no usable answer in
    time."""

    timeout_seconds: Annotated[int, Meta(ge=1, le=20)] | UnsetType | None = UNSET
