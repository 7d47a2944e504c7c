"""A card number said over two of the caller's turns ("4111 1111" … "1111 1111") is redacted
like one said in one breath: a call through REST whose caller speaks the two halves, the
assistant answering between them, keeps and sends placeholders only, in the stored transcript
(``GET /calls/{id}``), the ``transcript`` webhooks and the end-of-call report."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api.spoken_calls import SpokenCalls, spoken_calls
from fakes.world import ACME, make_settings
from voicedock.config import WebhookEndpointSettings
from voicedock.domain.webhooks import generate_secret
from webhooks.receiver import Receiver, wait_until

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

FIRST, SECOND = "My card number is 4111 1111", "1111 1111. Thank you."
DIGIT = re.compile(r"\d")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hooks = Receiver(generate_secret())
    await hooks.start()
    try:
        yield hooks
    finally:
        await hooks.stop()


@pytest.fixture
async def app(tmp_path: Path, receiver: Receiver) -> AsyncIterator[SpokenCalls]:
    settings = make_settings(f"sqlite:///{tmp_path / 'cards.db'}")
    settings.egress.allow_loopback = True
    settings.webhooks.endpoints = [
        WebhookEndpointSettings(
            name="desk",
            organization=ACME,
            url=receiver.url,
            secret=receiver.secret,
            event_types=["transcript", "end-of-call-report"],
        )
    ]
    async with spoken_calls(settings) as running:
        yield running


def contents(messages: list[dict[str, Any]], role: str | None = "user") -> list[str]:
    return [str(m["content"]) for m in messages if role is None or m.get("role") == role]


async def test_a_card_number_said_over_two_turns_is_redacted_in_both(
    app: SpokenCalls, receiver: Receiver
) -> None:
    body = {
        "name": "Card desk",
        "first_message": "Card services.",
        "redaction_plan": {"categories": ["card_number"]},
    }
    status, saved = await app.send("POST", "/assistants", body)
    assert status == 201, saved
    call_id = await app.answered({"assistant_id": saved["id"]})
    await app.caller_says(FIRST)
    await app.caller_says(SECOND)
    ended = await app.ended(call_id)

    said = contents(ended["messages"])
    assert said == ["My card number is [card_number]", "[card_number]. Thank you."], said

    await wait_until(
        lambda: any(json.loads(r.body)["type"] == "end-of-call-report" for r in receiver.requests),
        timeout=20,
    )
    bodies = [json.loads(r.body) for r in receiver.requests]
    hooked = [b["data"] for b in bodies if b["type"] == "transcript"]
    assert contents(hooked) == said, hooked
    (report,) = [b["data"] for b in bodies if b["type"] == "end-of-call-report"]
    assert contents(report["messages"]) == said, report
    # Nor does any message hold a digit of it: the assistant's "I understood: My card number
    # is 4111 1111", said before the rest came, included.
    for messages in (ended["messages"], hooked, report["messages"]):
        for text in contents(messages, role=None):
            assert DIGIT.search(text) is None, messages
    assert any("[card_number]" in t for t in contents(ended["messages"], "assistant"))
