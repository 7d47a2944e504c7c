"""A refused body, as a client sees it: each route's body is read once, by its model
(``api/models/``), and a field the service read by hand before answers in the same words as
then (``calls/json_readers.py``'s: ``must be a string``, ``must be between 5 and 120``, ``is
required``), a field the model alone refused in msgspec's, naming the field by its path. Same
status, title and message for the same body: no client notices which code reads it."""

from __future__ import annotations

import pytest

from api.conftest import Api
from fakes.world import DESTINATION, SUPPORT_ID

pytestmark = pytest.mark.unit

CALL = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
CAMPAIGN = {
    "name": "Spring",
    "assistant_id": SUPPORT_ID,
    "contacts": [{"destination": DESTINATION}],
}
INVALID = "Invalid destination format"
BAD = "Bad request"

# (path, body, title, message)
REFUSED = [
    ("/calls/outbound", [], BAD, "body must be a JSON object"),
    (
        "/calls/outbound",
        {"assistant_id": SUPPORT_ID},
        INVALID,
        "destination must be a phone number in E.164 format (+ and 7-15 digits)",
    ),
    (
        "/calls/outbound",
        {**CALL, "destination": "0612345678"},
        INVALID,
        "destination must be a phone number in E.164 format (+ and 7-15 digits)",
    ),
    ("/calls/outbound", {**CALL, "assistant_id": None}, BAD, "assistant_id must not be null"),
    (
        "/calls/outbound",
        {**CALL, "assistant_id": "a b"},
        BAD,
        "assistant_id must be an identifier (ASCII letters, digits, '_', '.', '-')",
    ),
    (
        "/calls/outbound",
        {**CALL, "agent_id": "x"},
        BAD,
        "agent_id is a deprecated alias of assistant_id: send only assistant_id",
    ),
    ("/calls/outbound", {**CALL, "first_message": 7}, BAD, "first_message must be a string"),
    ("/calls/outbound", {**CALL, "first_message": " "}, BAD, "first_message must not be empty"),
    (
        "/calls/outbound",
        {**CALL, "first_message": "x" * 2001},
        BAD,
        "first_message must be at most 2000 characters",
    ),
    (
        "/calls/outbound",
        {**CALL, "context": "a\x00b"},
        BAD,
        "context must not contain control characters",
    ),
    (
        "/calls/outbound",
        {**CALL, "ring_timeout_seconds": "30"},
        BAD,
        "ring_timeout_seconds must be an integer",
    ),
    (
        "/calls/outbound",
        {**CALL, "ring_timeout_seconds": 121},
        BAD,
        "ring_timeout_seconds must be between 5 and 120",
    ),
    ("/calls/outbound", {**CALL, "record": "yes"}, BAD, "record must be true or false"),
    ("/calls/outbound", {**CALL, "metadata": []}, BAD, "metadata must be a JSON object"),
    (
        "/calls/outbound",
        {**CALL, "variables": {"a b": "x"}},
        BAD,
        "variables: names are identifiers and values strings of at most 1000 characters",
    ),
    (
        "/calls/outbound",
        {**CALL, "scheduled_at": "tomorrow"},
        BAD,
        "scheduled_at must be an ISO 8601 date-time with a time zone, e.g. 2026-12-13T10:00:00Z",
    ),
    ("/calls/outbound", {**CALL, "bogus": 1}, BAD, "body: unknown field(s): bogus"),
    (
        "/calls/outbound",
        {**CALL, "number_id": "a b"},
        BAD,
        "number_id must be an identifier (ASCII letters, digits, '_', '.', '-')",
    ),
    ("/campaigns", {**CAMPAIGN, "name": None}, BAD, "name is required"),
    ("/campaigns", {**CAMPAIGN, "name": "a\nb"}, BAD, "name must not contain control characters"),
    ("/campaigns", {**CAMPAIGN, "contacts": []}, BAD, "contacts must hold at least one contact"),
    ("/campaigns", {**CAMPAIGN, "contacts": {}}, BAD, "contacts must be a list of contacts"),
    ("/campaigns", {**CAMPAIGN, "contacts": [7]}, BAD, "contacts[0] must be an object"),
    (
        "/campaigns",
        {**CAMPAIGN, "contacts": [{"destination": "06"}]},
        BAD,
        "contacts[0].destination must be E.164 (+ and 7-15 digits)",
    ),
    (
        "/campaigns",
        {**CAMPAIGN, "contacts": [{"destination": DESTINATION, "x": 1}]},
        BAD,
        "contacts[0]: unknown field(s): x",
    ),
    (
        "/campaigns",
        {**CAMPAIGN, "max_concurrent": -1},
        BAD,
        "max_concurrent must be between 0 and 10000",
    ),
    (
        "/campaigns",
        {**CAMPAIGN, "number_ids": ["a b"]},
        BAD,
        "number_ids must be a list of phone number ids",
    ),
    (
        "/campaigns",
        {**CAMPAIGN, "timezone": "Mars/Olympus"},
        BAD,
        "timezone: unknown time zone 'Mars/Olympus'",
    ),
    (
        "/campaigns",
        {**CAMPAIGN, "calling_window": {"start": "09:00", "end": "17:00", "x": 1}},
        BAD,
        "calling_window must be an object with days, start and end",
    ),
    (
        "/campaigns",
        {**CAMPAIGN, "calling_window": {"start": "9", "end": "17:00"}},
        BAD,
        "calling_window.start must be a time HH:MM (24-hour)",
    ),
    (
        "/campaigns",
        {**CAMPAIGN, "calling_window": {"days": [8], "start": "09:00", "end": "17:00"}},
        BAD,
        "calling_window.days: each day is 1-7 (Monday = 1) or mon, tue, ... sun",
    ),
    (
        "/campaigns",
        {**CAMPAIGN, "retries": "busy"},
        BAD,
        "retries must be an object: outcome -> {max_attempts, backoff_seconds}",
    ),
    (
        "/campaigns",
        {**CAMPAIGN, "retries": {"busy": {"max_attempts": 11}}},
        BAD,
        "retries.busy.max_attempts must be 1-10",
    ),
    (
        "/campaigns",
        {**CAMPAIGN, "retries": {"busy": {"max_attempts": 2, "wait": 1}}},
        BAD,
        "retries.busy must be {max_attempts, backoff_seconds}",
    ),
    (
        "/campaigns",
        {**CAMPAIGN, "retries": {"answered": {"max_attempts": 2}}},
        BAD,
        "retries: outcome must be one of busy, no-answer, rejected, invalid-number, congestion, "
        "unreachable, pbx-error, failed, voicemail",
    ),
    (
        "/do-not-call",
        {"number": "06"},
        "Invalid request",
        "number must be a phone number in E.164 format (+ and 7-15 digits)",
    ),
]
CONTROL = [
    ({}, "type is required: one of inject-context, say, end-call, transfer, handoff"),
    (
        {"type": "dance"},
        "unknown command type; use one of inject-context, say, end-call, transfer, handoff",
    ),
    ({"type": "say"}, "content is required"),
    ({"type": "say", "content": 7}, "content must be a string"),
    (
        {"type": "inject-context", "content": "x", "source": "boss"},
        "source must be one of: api, supervisor",
    ),
    (
        {"type": "inject-context", "content": "x", "trigger_response": 1},
        "trigger_response must be true or false",
    ),
    (
        {"type": "end-call", "message": "a", "content": "b"},
        "send the final message as message or content, not both",
    ),
    ({"type": "transfer"}, "destination is required"),
    ({"type": "transfer", "destination": "x" * 81}, "destination must be at most 80 characters"),
    (
        {"type": "transfer", "destination": "sales", "mode": "cold"},
        "mode must be one of: blind, warm",
    ),
]


@pytest.mark.parametrize(("path", "body", "title", "message"), REFUSED)
async def test_a_refused_body_names_its_field_as_before(
    api: Api, path: str, body: object, title: str, message: str
) -> None:
    response = await api.client.post(path, json=body, headers=api.auth())
    assert response.status == 400
    assert await response.json() == {"error": title, "message": message}


@pytest.mark.parametrize(("body", "message"), CONTROL)
async def test_a_refused_command_names_its_field_as_before(
    api: Api, body: object, message: str
) -> None:
    placed = await api.client.post("/calls/outbound", json=CALL, headers=api.auth())
    call_id = (await placed.json())["call_id"]
    response = await api.client.post(f"/calls/{call_id}/control", json=body, headers=api.auth())
    assert response.status == 400
    assert await response.json() == {"error": BAD, "message": message}
