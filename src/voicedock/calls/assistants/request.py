"""Which assistant answers an inbound call: the number's own, or the organization's server's
choice (the ``assistant-request`` webhook).

A number asks the server when it has no assistant of its own, or when its assistant's
configuration says so (``"assistant_request": {"timeout_seconds": 5}``: ask first, answer
with me when the server gives no usable answer). The server answers within the deadline with
one of::

    {"assistant_id": "..."}                  a saved, active assistant of the organization
    {"assistant": {...}}                     a transient configuration (as POST /calls/outbound)
    {"error": "We are closed. Goodbye."}     a refusal: spoken to the caller, then hang-up

Anything else (no endpoint, a timeout, an error status, an unknown assistant, a bad
configuration, one whose provider keys do not hold: ``KeyRefs.check``) falls back to the
number's assistant; a number without one (or whose own does not hold) rejects the call.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Protocol

from voicedock.calls.assistants.caller_memory import SUPPLIED_MAX, forgotten, supplied
from voicedock.calls.assistants.config import (
    ASSISTANT_REQUEST,
    DEFAULT_ASSISTANT_REQUEST_TIMEOUT_SECONDS,
    check_config,
)
from voicedock.calls.assistants.resolve import (
    ChosenAssistant,
    ResolvedAssistant,
    resolve_assistant,
)
from voicedock.calls.assistants.squads import resolve_squad
from voicedock.config import ByokSettings, SpeechSettings
from voicedock.domain.assistant_config import HANG_UP_AFTER_FIRST_MESSAGE, set_or
from voicedock.domain.attestation import CallerAttestation
from voicedock.domain.ids import mask_call_id
from voicedock.domain.json import JsonObject, JsonValue, json_object
from voicedock.domain.records import PhoneNumber
from voicedock.domain.squads import DEFAULT_MAX_HANDOFFS
from voicedock.domain.webhooks import InboundAssistantRequest
from voicedock.errors import ApiError, BadRequest, ServerRequestFailed
from voicedock.store.base import Store

log = logging.getLogger("voicedock.calls")


class AssistantServer(Protocol):
    """Where ``assistant-request`` goes (``voicedock.webhooks.server_requests``)."""

    async def assistant_request(self, request: InboundAssistantRequest) -> JsonObject: ...


async def inbound_assistant(
    store: Store,
    speech: SpeechSettings,
    byok: ByokSettings,
    server: AssistantServer | None,
    number: PhoneNumber,
    *,
    call_id: str,
    caller: str | None,
    max_handoffs: int = DEFAULT_MAX_HANDOFFS,
    attestation: CallerAttestation | None = None,
) -> ResolvedAssistant | None:
    """The assistant of an inbound call to ``number`` (``None``: reject the call); a number
    whose squad answers: its first member's, with the squad (at most ``max_handoffs``)."""
    own = await _own(store, speech, byok, number, call_id, max_handoffs, caller)
    asks_first = set_or(own.config.assistant_request, None) if own else None
    if server is None or (own is not None and asks_first is None):
        return own
    timeout = DEFAULT_ASSISTANT_REQUEST_TIMEOUT_SECONDS
    if asks_first is not None and isinstance(asks_first.timeout_seconds, int):
        timeout = asks_first.timeout_seconds
    try:
        request = InboundAssistantRequest(
            organization_id=number.organization_id,
            call_id=call_id,
            caller=caller,
            called=number.number,
            number_id=number.id,
            timeout_s=float(timeout),
            attestation=attestation,
        )
        answer = await server.assistant_request(request)
        return await _chosen(store, speech, byok, number, answer, caller)
    except (ServerRequestFailed, ApiError) as exc:
        shown = mask_call_id(call_id)
        log.info("call %s: assistant-request without usable answer: %s", shown, exc)
        return own


async def _own(
    store: Store,
    speech: SpeechSettings,
    byok: ByokSettings,
    number: PhoneNumber,
    call_id: str,
    max_handoffs: int,
    caller: str | None,
) -> ResolvedAssistant | None:
    """The number's own: its squad's first member (the squad taking the call), else its
    assistant."""
    org_id = number.organization_id
    try:
        if number.squad_id is not None:
            chosen = ChosenAssistant()
            return await resolve_squad(
                store, org_id, number.squad_id, chosen, speech, byok, max_handoffs=max_handoffs
            )
        if number.assistant_id is None:
            return None
        chosen = ChosenAssistant(assistant_id=number.assistant_id, party=caller)
        return await resolve_assistant(
            store, org_id, chosen, speech, byok, split=number.traffic_split
        )
    except ApiError as exc:
        log.info("call %s: the number's assistant cannot answer: %s", mask_call_id(call_id), exc)
        return None


async def _chosen(
    store: Store,
    speech: SpeechSettings,
    byok: ByokSettings,
    number: PhoneNumber,
    answer: Mapping[str, JsonValue],
    caller: str | None,
) -> ResolvedAssistant:
    """The server's answer as a resolved assistant (an ``ApiError`` if unusable)."""
    error = answer.get("error")
    if isinstance(error, str) and error.strip():
        config: JsonObject = {
            "first_message": error.strip()[:2_000],
            HANG_UP_AFTER_FIRST_MESSAGE: True,
        }
        chosen = ChosenAssistant(assistant=config)
        return await resolve_assistant(store, number.organization_id, chosen, speech, byok)
    memory = answer.get("memory", True)  # the server's say on what the caller is remembered by
    if memory is not True and memory is not False and not _memory_text(memory):
        raise BadRequest(f"memory must be false or a text of 1-{SUPPLIED_MAX} characters")
    assistant_id = answer.get("assistant_id")
    if isinstance(assistant_id, str) and assistant_id:
        chosen = ChosenAssistant(assistant_id=assistant_id, party=caller)
    elif (given := json_object(answer.get("assistant"))) is not None:
        transient = check_config(given, "assistant", allow_profile=True)
        transient.pop(ASSISTANT_REQUEST, None)
        chosen = ChosenAssistant(assistant=transient, party=caller)
    else:
        raise BadRequest("the answer names no assistant_id, assistant or error")
    resolved = await resolve_assistant(
        store, number.organization_id, chosen, speech, byok, remember=memory is True
    )
    if memory is False:
        return dataclasses.replace(resolved, config=forgotten(resolved.config))
    if isinstance(memory, str):
        return dataclasses.replace(resolved, config=supplied(resolved.config, memory))
    return resolved


def _memory_text(value: JsonValue) -> bool:
    return isinstance(value, str) and bool(value.strip()) and len(value) <= SUPPLIED_MAX
