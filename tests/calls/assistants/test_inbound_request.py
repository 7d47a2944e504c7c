"""An inbound call whose organization's server answers the assistant-request with an assistant
that cannot be used (a template the organization does not have: a 422 to an API client) is
answered by the number's own assistant, as for any unusable answer; an answer's ``memory``
supplies or vetoes what the caller is remembered by; a split assistant answers each caller
with its version."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from voicedock.calls.assistants.caller_memory import SUPPLIED_HEADING, left_by
from voicedock.calls.assistants.request import inbound_assistant
from voicedock.config import ByokSettings, SpeechSettings
from voicedock.domain.assistant_config import config_of
from voicedock.domain.records import (
    Assistant,
    Call,
    CallStatus,
    Direction,
    Organization,
    PhoneNumber,
)
from voicedock.domain.traffic_split import TrafficShare, version_for
from voicedock.domain.webhooks import InboundAssistantRequest
from voicedock.store import open_store

pytestmark = pytest.mark.unit

ORG = "org-1"
OWN = Assistant(
    id="own",
    organization_id=ORG,
    name="Desk",
    config=config_of({"first_message": "Desk here.", "assistant_request": {"timeout_seconds": 1}}),
)
NUMBER = PhoneNumber(
    id="n1", organization_id=ORG, number="+31850835037", trunk="carrier", assistant_id="own"
)


class Server:
    """The organization's server, answering every assistant-request with ``answer``."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.asked = 0

    async def assistant_request(self, _request: InboundAssistantRequest) -> dict[str, Any]:
        self.asked += 1
        return self.answer


@pytest.mark.parametrize(
    "assistant",
    [
        {"first_message": "Night.", "tools": [{"template_id": "no-such-template"}]},
        {"first_message": "Night.", "analysis_plan": {"template_id": "no-such-template"}},
        {"provider": "openai"},  # the provider rules: a 400 to an API client
    ],
)
async def test_an_unusable_answer_falls_back_to_the_number_s_assistant(
    tmp_path: Path, assistant: dict[str, Any]
) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'in.db'}")
    try:
        await store.migrate()
        async with store.transaction() as tx:
            await tx.insert_organization(Organization(id=ORG, name="org"))
            await tx.insert_assistant(OWN)
            await tx.insert_phone_number(NUMBER)
        server = Server({"assistant": assistant})
        chosen = await inbound_assistant(
            store,
            SpeechSettings(),
            ByokSettings(),
            server,
            NUMBER,
            call_id="call-1",
            caller="+31612345678",
        )
        assert server.asked == 1
        assert chosen is not None
        assert (chosen.assistant_id, chosen.config.first_message) == ("own", "Desk here.")
    finally:
        await store.aclose()


async def test_an_inbound_call_runs_the_version_its_caller_is_split_to(tmp_path: Path) -> None:
    """The number's assistant split 50/50 between two versions: each caller is answered by
    the version the split gives that caller's number, every time, and both versions answer."""
    store = await open_store(f"sqlite:///{tmp_path / 'in.db'}")
    try:
        await store.migrate()
        desk = Assistant(
            id="desk", organization_id=ORG, name="Desk", config=config_of({"first_message": "One."})
        )
        async with store.transaction() as tx:
            await tx.insert_organization(Organization(id=ORG, name="org"))
            await tx.insert_assistant(desk)
            desk.config = config_of({"first_message": "Two."})
            await tx.update_assistant(desk)
            desk.traffic_split = [
                TrafficShare(version=1, weight=50),
                TrafficShare(version=2, weight=50),
            ]
            await tx.set_assistant_release(desk)
            await tx.insert_phone_number(replace(NUMBER, assistant_id="desk"))
        said: dict[str, set[tuple[int | None, object]]] = {}
        for caller in [f"+4930123456{n:02d}" for n in range(12)] * 2:
            chosen = await inbound_assistant(
                store,
                SpeechSettings(),
                ByokSettings(),
                None,
                replace(NUMBER, assistant_id="desk"),
                call_id="call-1",
                caller=caller,
            )
            assert chosen is not None
            said.setdefault(caller, set()).add((chosen.version, chosen.config.first_message))
            expected = version_for(desk.traffic_split, "desk", caller)
            assert chosen.version == expected
        assert all(len(answers) == 1 for answers in said.values())
        assert {answer for answers in said.values() for answer in answers} == {
            (1, "One."),
            (2, "Two."),
        }
    finally:
        await store.aclose()


REMEMBERING = Assistant(
    id="rem",
    organization_id=ORG,
    name="Desk",
    config=config_of({"system_prompt": "You book.", "memory": {"recent_calls": 2}}),
)
CALLER = "+31612345678"


@pytest.mark.parametrize(
    ("memory", "told", "left"),
    [
        (None, "Jan booked Monday.", True),  # the server says nothing: as the assistant says
        (False, None, False),  # vetoed: not told, leaves nothing
        ("VIP since 2019; prefers mornings.", "VIP since 2019", True),  # supplied instead
        (7, "Desk here.", None),  # unusable: the number's own assistant answers
        ("", "Desk here.", None),
    ],
)
async def test_the_server_supplies_or_vetoes_what_the_caller_is_remembered_by(
    tmp_path: Path, memory: object, told: str | None, left: bool | None
) -> None:
    """An assistant-request answer's ``memory``: absent, the caller's stored memory is told;
    ``false``, nothing is told and the call leaves none; a text, that text is told instead of
    the stored memory; anything else is an unusable answer."""
    store = await open_store(f"sqlite:///{tmp_path / 'in.db'}")
    try:
        await store.migrate()
        async with store.transaction() as tx:
            await tx.insert_organization(Organization(id=ORG, name="org"))
            await tx.insert_assistant(OWN)
            await tx.insert_assistant(REMEMBERING)
            await tx.insert_phone_number(NUMBER)
            call = Call(
                id="call-0", organization_id=ORG, direction=Direction.INBOUND,
                status=CallStatus.ENDED, caller_phone=CALLER, assistant_phone=None,
                assistant_config=REMEMBERING.config, summary="Jan booked Monday.",
            )  # fmt: skip
            await tx.insert_call(call)
            earlier = left_by(call)
            assert earlier is not None
            await tx.insert_caller_memory(earlier)
        answer: dict[str, Any] = {"assistant_id": "rem"}
        if memory is not None:
            answer["memory"] = memory
        chosen = await inbound_assistant(
            store, SpeechSettings(), ByokSettings(), Server(answer), NUMBER,
            call_id="call-1", caller=CALLER,
        )  # fmt: skip
        assert chosen is not None
        prompt = chosen.config.system_prompt
        said = f"{chosen.config.first_message} {prompt}"
        if left is None:  # the number's own
            assert chosen.assistant_id == "own"
            assert told is not None
            assert told in said
            return
        assert chosen.assistant_id == "rem"
        assert isinstance(prompt, str)
        assert prompt.startswith("You book.")
        if told is None:
            assert prompt == "You book."
        else:
            assert told in prompt
        if isinstance(memory, str):
            assert SUPPLIED_HEADING in prompt
            assert "Jan booked" not in prompt
        ended = replace(call, id="call-1", assistant_config=chosen.config, summary="Again.")
        assert (left_by(ended) is not None) is left
    finally:
        await store.aclose()
