"""Inbound calls: a call to one of the organizations' numbers, offered by the PBX
(``InboundPbx.set_inbound_handler``). It is taken when the number is ours and an assistant
answers it (the number's, or the one the organization's server chooses:
``calls/assistants/request.py``), and the node's offline speech is not at capacity; the call is
then stored ``connecting`` and its first message prepared while the PBX answers it. Otherwise
it is rejected at the PBX, and no call record is made."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from voicedock.calls.assistants.request import AssistantServer, inbound_assistant
from voicedock.calls.engine.presynthesizer import Presynthesizer, prepare_ahead
from voicedock.calls.engine.timeline import Timeline
from voicedock.calls.speech_admission import SpeechAdmission
from voicedock.config import Settings
from voicedock.domain.ids import new_inbound_call_id
from voicedock.domain.records import Call, CallStatus, Direction
from voicedock.pbx.base import InboundCall
from voicedock.store.base import Store
from voicedock.validation import is_e164

# How long an accepted inbound call may take to be answered (it is answered at once).
INBOUND_ANSWER_S = 30.0


class InboundCalls:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], datetime],
        node_id: str,
        timeline: Timeline,
        *,
        assistant_server: AssistantServer | None = None,
        admission: SpeechAdmission | None = None,
        presynthesizer: Presynthesizer | None = None,
    ) -> None:
        """``assistant_server``: the organizations' servers that may choose the assistant of
        an inbound call (``assistant-request``)."""
        self._store = store
        self._settings = settings
        self._now = clock
        self._node_id = node_id
        self._timeline = timeline
        self._assistant_server = assistant_server
        self._admission = admission
        self._presynthesizer = presynthesizer

    async def accept(self, inbound: InboundCall) -> str | None:
        """Accept a call to one of our numbers: our call id, or ``None`` to reject it."""
        number = await self._store.find_phone_number_by_e164(inbound.called)
        if number is None:
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
        )
        if resolved is None:
            return None
        admission = self._admission
        if admission is not None and admission.refusal(resolved.config, "inbound") is not None:
            return None  # rejected at the PBX: the node's offline speech is at capacity
        now = self._now()
        call = Call(
            id=call_id,
            organization_id=number.organization_id,
            direction=Direction.INBOUND,
            status=CallStatus.CONNECTING,
            caller_phone=caller,
            assistant_phone=number.number,
            number_id=number.id,
            **resolved.call_fields(),
            pbx_call_ref=inbound.pbx_call_ref,
            owner_node=self._node_id,
            pbx=inbound.pbx or None,
            trunk=number.trunk,
            created_at=now,
            updated_at=now,
        )
        async with self._store.transaction() as tx:
            await self._timeline.begin(tx, call, now)
        prepare_ahead(self._presynthesizer, call, INBOUND_ANSWER_S)
        return call.id
