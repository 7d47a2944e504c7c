"""An inbound call whose organization's server answers the assistant-request with an assistant
that cannot be used (a template the organization does not have: a 422 to an API client) is
answered by the number's own assistant, as for any unusable answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from voicedock.calls.assistants.request import inbound_assistant
from voicedock.config import ByokSettings, SpeechSettings
from voicedock.domain.assistant_config import config_of
from voicedock.domain.records import Assistant, Organization, PhoneNumber
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
