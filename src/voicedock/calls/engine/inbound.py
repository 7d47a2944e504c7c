"""Inbound calls: a call to one of the organizations' numbers, offered by the PBX
(``InboundPbx.set_inbound_handler``). It is taken when the number is ours (and of the
organization whose sip domain its Request-URI names, if any: ``organizations/domains.py``) and an
assistant answers it (the number's, or the one the organization's server chooses:
``calls/assistants/request.py``), and the node's offline speech is not at capacity; the call is
then stored ``connecting`` and its first message prepared while the PBX answers it. Otherwise
it is rejected at the PBX, and no call record is made.

A test call of a test suite arrives the same way, "to" ``test-<token>`` (``pbx.base``
``RehearsalPbx``): the desk that placed it (``PlacedTestCalls``, the test runs') says which
organization, assistant and run it is for; it is stored with its run's id, and without a
caller or our number."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from voicedock.calls.assistants.request import AssistantServer, inbound_assistant
from voicedock.calls.assistants.resolve import ResolvedAssistant
from voicedock.calls.engine.ground import EnginePart, Ground
from voicedock.calls.engine.presynthesizer import Presynthesizer, prepare_ahead
from voicedock.calls.speech_admission import SpeechAdmission
from voicedock.domain.ids import new_inbound_call_id
from voicedock.domain.records import Call, CallStatus, Direction, PhoneNumber
from voicedock.organizations.domains import sip_domain_admits
from voicedock.pbx.base import TEST_CALL_PREFIX, InboundCall
from voicedock.validation import is_e164

log = logging.getLogger("voicedock.calls")

# How long an accepted inbound call may take to be answered (it is answered at once).
INBOUND_ANSWER_S = 30.0


@dataclass(frozen=True, slots=True)
class PlacedTestCall:
    """A test call placed inside the PBX, expected as an inbound call: its id, organization,
    assistant and run."""

    call_id: str
    organization_id: str
    assistant: ResolvedAssistant
    run_id: str


class PlacedTestCalls(Protocol):
    """Where the test calls placed by this node are known (``calls/rehearsal``)."""

    def claim(self, token: str) -> PlacedTestCall | None:
        """The test call placed with ``token`` (once: a second claim is ``None``)."""
        ...


class InboundCalls(EnginePart):
    def __init__(
        self,
        ground: Ground,
        *,
        assistant_server: AssistantServer | None = None,
        admission: SpeechAdmission | None = None,
        presynthesizer: Presynthesizer | None = None,
    ) -> None:
        """``assistant_server``: the organizations' servers that may choose the assistant of
        an inbound call (``assistant-request``)."""
        super().__init__(ground)
        self._settings = ground.settings
        self._assistant_server = assistant_server
        self._admission = admission
        self._presynthesizer = presynthesizer
        self._test_calls: PlacedTestCalls | None = None

    def take_test_calls(self, desk: PlacedTestCalls) -> None:
        """Test calls to ``test-<token>`` are ``desk``'s (none are taken without one)."""
        self._test_calls = desk

    async def accept(self, inbound: InboundCall) -> str | None:
        """Accept a call to one of our numbers: our call id, or ``None`` to reject it."""
        if inbound.called.startswith(TEST_CALL_PREFIX):
            return await self._accept_test(inbound, inbound.called[len(TEST_CALL_PREFIX) :])
        number = await self._store.find_phone_number_by_e164(inbound.called)
        if number is None:
            return None
        if not await sip_domain_admits(self._store, inbound.domain, number.organization_id):
            log.info("inbound call refused: its SIP domain is another organization's")
            return None
        caller = inbound.caller if is_e164(inbound.caller) else None
        call_id = new_inbound_call_id(caller)
        resolved = await inbound_assistant(
            self._store,
            self._settings.speech,
            self._settings.byok,
            self._assistant_server,
            number,
            call_id=call_id,
            caller=caller,
            max_handoffs=self._settings.calls.max_handoffs,
            attestation=inbound.attestation,
        )
        if resolved is None:
            return None
        return await self._take(
            inbound, call_id, number.organization_id, resolved, caller=caller, number=number
        )

    async def _accept_test(self, inbound: InboundCall, token: str) -> str | None:
        """A test call this node placed: stored with its run, the assistant under test's."""
        offer = None if self._test_calls is None else self._test_calls.claim(token)
        if offer is None:
            return None
        return await self._take(
            inbound, offer.call_id, offer.organization_id, offer.assistant, test_run=offer.run_id
        )

    async def _take(
        self,
        inbound: InboundCall,
        call_id: str,
        organization_id: str,
        resolved: ResolvedAssistant,
        *,
        caller: str | None = None,
        number: PhoneNumber | None = None,
        test_run: str | None = None,
    ) -> str | None:
        """The call stored ``connecting`` and its first message prepared; ``None``: rejected
        at the PBX, the node's offline speech being at capacity."""
        admission = self._admission
        if admission is not None and admission.refusal(resolved.config, "inbound") is not None:
            return None
        now = self._now()
        call = Call(
            id=call_id,
            organization_id=organization_id,
            direction=Direction.INBOUND,
            status=CallStatus.CONNECTING,
            caller_phone=caller,
            assistant_phone=None if number is None else number.number,
            number_id=None if number is None else number.id,
            **resolved.call_fields(),
            pbx_call_ref=inbound.pbx_call_ref,
            owner_node=self._node_id,
            pbx=inbound.pbx or None,
            trunk=None if number is None else number.trunk,
            test_run_id=test_run,
            caller_attestation=inbound.attestation,
            created_at=now,
            updated_at=now,
        )
        async with self._store.transaction() as tx:
            await self._timeline.begin(tx, call, now)
        prepare_ahead(self._presynthesizer, call, INBOUND_ANSWER_S)
        return call.id
