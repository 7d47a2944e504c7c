"""The language a call opens in, decided before its greeting: the dialled number's own
``language`` (an inbound call's phone number record says it), else the first of the
assistant's ``languages`` whose ``calling_codes`` hold the far party's country calling code
(an inbound caller's number, an outbound call's destination). A listed language opens the
call: its ``first_message`` is the greeting, its voice speaks it and the model is asked in it
(``CallLanguages.open_in``); later turns follow the caller as ever."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from msgspec import UNSET

from voicedock.domain.assistant_config import AssistantConfig, set_or
from voicedock.domain.number_plan import calling_code
from voicedock.domain.records import Call, Direction
from voicedock.store.protocols.numbers import NumberLookups

if TYPE_CHECKING:  # a call's pipeline is loaded with it, not with the engine
    from voicedock.pipeline.hearing.language import SpokenLanguage


async def call_opening_language(numbers: NumberLookups, call: Call) -> str | None:
    """The language ``call`` opens in: an inbound call's dialled number's (its record's
    ``language``), else the one its far party's calling code says (``opening_language``).
    None for an assistant that lists no languages: nothing to open in, no number to look up."""
    if call.assistant_config.languages is UNSET:
        return None
    dialled = None
    if call.direction is Direction.INBOUND and call.number_id is not None:
        number = await numbers.get_phone_number(call.organization_id, call.number_id)
        dialled = None if number is None else number.language
    return opening_language(call.assistant_config, call.caller_phone, dialled)


def opens_in_listed(config: AssistantConfig, language: str | None) -> bool:
    """Whether a call opening in ``language`` opens in one of the assistant's ``languages``
    (its greeting, voice and line then that language's)."""
    return any(entry.language == language for entry in set_or(config.languages, []))


def opening_language(
    config: AssistantConfig, far_number: str | None, dialled_language: str | None = None
) -> str | None:
    """The call's opening language (None: nothing says one): ``dialled_language``, else the
    first listed language whose calling codes hold ``far_number``'s."""
    if dialled_language:
        return dialled_language
    code = calling_code(far_number) if far_number else None
    if code is None:
        return None
    for entry in set_or(config.languages, []):
        if code in set_or(entry.calling_codes, []):
            return entry.language
    return None


def greeted_in(config: AssistantConfig, opened: SpokenLanguage | None) -> AssistantConfig:
    """``config`` greeting in the language the call ``opened`` in: its ``first_message``
    (without one, the assistant's own). A refusal the organization's server sent
    (``hang_up_after_first_message``) is said as it is."""
    if opened is None or opened.first_message is None or config.hang_up_after_first_message:
        return config
    return msgspec.structs.replace(config, first_message=opened.first_message)
