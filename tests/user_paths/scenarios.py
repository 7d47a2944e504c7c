"""What a user does with each documented request, and what they check afterwards.

``scenario_of(example)`` names the scenario of an example from its method, path and body;
``SCENARIOS`` maps each name to a coroutine that sends exactly the example's request (with
its placeholders filled in by ``fill``) on a backend and checks the answer, the call record,
what the far side heard and, where the example is about speech, what it heard word for word.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import wave
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from e2e.audio_helpers import (
    TERMINAL,
    assert_heard,
    speech_seconds,
    transcribe,
    wait_transcript,
    words,
)
from e2e.test_calls_e2e import get_call, until
from fakes.calls import call_finished
from fakes.world import ACME
from user_paths.backends import GREETING, GREETING_WORDS, UserPathBackend
from user_paths.examples import Example
from voicedock.api.api_keys import issue_api_key
from voicedock.api.routes.usage import CSV_COLUMNS
from voicedock.calls.assistants.placeholders import fill as fill_placeholders
from voicedock.domain.records import KeyScope, utcnow
from voicedock.organizations.billing import set_rate_card
from voicedock.pipeline.audio import resample_pcm16

# How far ahead the examples' scheduled calls are placed.
SCHEDULE_AHEAD = timedelta(seconds=5)
# The text a placeholder content ("...") of an example is replaced with.
PLACEHOLDER_TEXT = "Your parcel has arrived at the front desk."
PIPER_VOICE = "piper:en_US-joe-medium"  # the packaged voice calls speak with
_SMALL_WORDS = {"the", "a", "an", "as", "has", "been", "is", "at", "of", "one", "you", "your"}


# ---- sending an example ----------------------------------------------------------------------


def fill(
    example: Example,
    backend: UserPathBackend,
    *,
    call_id: str = "",
    webhook_id: str = "",
) -> tuple[str, str, Any, dict[str, str]]:
    """The example's request with the engine's real values: (method, path, body, headers)."""
    path = example.path.replace("<call id>", call_id).replace("<id>", webhook_id)
    path = re.sub(r"^/calls/string\b", f"/calls/{call_id}", path)  # the seeds' sample id
    headers = {k: v.replace("$KEY", backend.key) for k, v in example.headers}
    if example.path != "/health":
        headers.update(backend.auth())  # the seeds leave out the key a user always sends
    body = _fill_body(json.loads(json.dumps(example.body)), backend)
    return example.method, path, body, headers


def _fill_body(body: Any, backend: UserPathBackend) -> Any:
    if not isinstance(body, dict):
        return body
    for key in ("assistant_id", "agent_id"):
        if key in body:  # "<assistant id>", or a sample uuid that exists nowhere
            body[key] = backend.assistant_id
    if body.get("type") == "transfer":
        body["destination"] = backend.transfer_target(
            body["destination"], body.get("mode", "blind")
        )
    elif "destination" in body:
        body["destination"] = backend.destination(body["destination"])
    if "scheduled_at" in body:  # a scheduled call: a few seconds from now
        start = datetime.now(UTC) + SCHEDULE_AHEAD
        body["scheduled_at"] = start.isoformat()
        if "latest_at" in body:
            body["latest_at"] = (start + timedelta(minutes=2)).isoformat()
    for contact in body.get("contacts", []):  # a campaign's
        contact["destination"] = backend.destination(contact["destination"])
    if "url" in body:  # an endpoint of the user's: the loopback receiver stands in for it
        body["url"] = backend.webhooks.url
    for key in ("content", "message"):
        if body.get(key) == "...":
            body[key] = PLACEHOLDER_TEXT
    return body


async def send(backend: UserPathBackend, example: Example, **ids: str) -> tuple[int, Any, Any]:
    """Send the example; returns (status, parsed body or text, response headers)."""
    method, path, body, headers = fill(example, backend, **ids)
    data = json.dumps(body) if body is not None else None
    resp = await backend.client.request(method, path, data=data, headers=headers)
    text = await resp.text()
    try:
        parsed = json.loads(text) if text else None
    except json.JSONDecodeError:
        parsed = text
    return resp.status, parsed, resp.headers


def assert_documented_shape(documented: Any, actual: Any, where: str = "") -> None:
    """Every field the documented response shows is there; documented booleans match."""
    if not isinstance(documented, dict):
        return
    assert isinstance(actual, dict), f"{where or 'response'} is not an object: {actual!r}"
    missing = sorted(set(documented) - set(actual))
    assert not missing, f"{where or 'response'} lacks documented fields {missing}: {actual}"
    for key, value in documented.items():
        if isinstance(value, bool):
            assert actual[key] is value, (key, actual[key])
        elif isinstance(value, str) and value.endswith("…"):
            assert str(actual[key]).startswith(value[:-1]), (key, actual[key])
        elif isinstance(value, dict) and isinstance(actual[key], dict):
            assert_documented_shape(value, actual[key], f"{where}.{key}")


def expected_status(example: Example, default: int = 200) -> int:
    return example.status if example.status is not None else default


# ---- the service, as a user sees it ----------------------------------------------------------


async def wait_status(
    backend: UserPathBackend, call_id: str, wanted: tuple[str, ...], within: float = 15.0
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        seen.update(await get_call(backend, call_id))
        return seen["status"] in wanted

    try:
        await until(reached, within)
    except TimeoutError:
        raise AssertionError(f"{call_id} not {wanted} within {within} s: {seen}") from None
    return seen


async def wait_recorded(backend: UserPathBackend, call_id: str, within: float = 20.0) -> Any:
    """The ended call once its record is complete (messages come after the hang-up)."""
    await wait_status(backend, call_id, TERMINAL, within=within)
    await asyncio.wait_for(call_finished(backend.service.runner, call_id), 15)
    return await get_call(backend, call_id)


async def place(backend: UserPathBackend, destination: str, **extra: Any) -> str:
    body = {"destination": destination, "assistant_id": backend.assistant_id, **extra}
    resp = await backend.client.post("/calls/outbound", json=body, headers=backend.auth())
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["call_id"])


async def live_call(backend: UserPathBackend, destination: str | None = None) -> str:
    """A call in progress (commands sent now follow the greeting, in order)."""
    call_id = await place(backend, destination or backend.silent)
    await wait_status(backend, call_id, ("in-progress",))
    return call_id


async def hang_up(backend: UserPathBackend, call_id: str) -> dict[str, Any]:
    """The user ends the call (not an example: the end of one) and waits for its record."""
    resp = await backend.client.post(
        f"/calls/{call_id}/control", json={"type": "end-call"}, headers=backend.auth()
    )
    assert resp.status in (200, 409), await resp.text()
    record: dict[str, Any] = await wait_recorded(backend, call_id)
    return record


async def finished_call(backend: UserPathBackend) -> dict[str, Any]:
    """One ended, fully recorded call of this backend's service (made once per module)."""
    if "finished" not in backend.cache:
        call_id = await live_call(backend)
        await wait_transcript(backend, call_id, lambda m: m["content"] == GREETING)
        backend.cache["finished"] = await hang_up(backend, call_id)
    record: dict[str, Any] = backend.cache["finished"]
    return record


def significant(text: str) -> set[str]:
    return {w for w in words(text) if len(w) > 2 and w not in _SMALL_WORDS}


async def heard_text(backend: UserPathBackend, call_id: str, mark: Any) -> str:
    pcm, rate = await backend.heard(call_id, mark)
    assert speech_seconds(pcm, rate) > 0.3, "the far side heard no speech"
    return await transcribe(pcm, rate)


# ---- scenarios -------------------------------------------------------------------------------


def scenario_of(example: Example) -> str | None:
    """The scenario that covers ``example`` (None: no scenario, the coverage test fails)."""
    path = urlsplit(example.path).path
    body = example.body if isinstance(example.body, dict) else {}
    if (example.method, path) == ("POST", "/calls/outbound"):
        if "scheduled_at" in body:
            return "outbound-scheduled"
        if "assistant" in body or "agent" in body:
            return "outbound-transient"
        if "assistant_override" in body or "agent_config" in body:
            return "outbound-hybrid"
        if "assistant_id" in body or "agent_id" in body:
            return "outbound-reference"
        return None
    if example.method == "POST" and re.fullmatch(r"/calls/[^/]+/control", path):
        kind = body.get("type")
        return (
            f"control-{kind}" if kind in ("say", "inject-context", "end-call", "transfer") else None
        )
    if example.method == "GET":
        if path == "/calls":
            return "list-calls"
        if re.fullmatch(r"/calls/[^/]+/events", path):
            return "call-events"
        if re.fullmatch(r"/calls/[^/]+", path):
            return "get-call"
        if path in ("/assistants", "/phone-numbers", "/trunks", "/health"):
            return "list-resources"
        if path == "/webhooks":
            return "list-webhooks"
        if re.fullmatch(r"/webhooks/[^/]+", path):
            return "get-webhook"
        if path == "/organization":
            return "get-organization"
    if (example.method, path) == ("PATCH", "/organization"):
        return "patch-organization"
    if (example.method, path) == ("GET", "/voices"):
        return "list-voices"
    if (example.method, path) == ("GET", "/usage"):
        return "usage"
    if example.method == "GET" and path in ("/billing/rate-card", "/billing/statements"):
        return "billing"
    if example.method == "POST" and re.fullmatch(r"/voices/[^/]+/preview", path):
        return "voice-preview"
    if (example.method, path) == ("POST", "/webhooks"):
        return "create-webhook"
    if (example.method, path) == ("POST", "/campaigns"):
        return "create-campaign"
    if example.method == "DELETE" and re.fullmatch(r"/webhooks/[^/]+", path):
        return "delete-webhook"
    if path == "/provider-keys" or re.fullmatch(r"/provider-keys/[^/]+", path):
        return "provider-keys"
    if path == "/agents" or re.fullmatch(r"/agents/[^/]+", path):
        return "agents"
    if path == "/analysis-templates" or re.fullmatch(r"/analysis-templates/[^/]+", path):
        return "analysis-templates"
    return None


def greeting_of(body: dict[str, Any]) -> str:
    """The first message the example's call should start with (its ``variables`` filled in)."""
    for part in (body.get("assistant_override"), body.get("assistant"), body):
        if isinstance(part, dict) and part.get("first_message"):
            return fill_placeholders(str(part["first_message"]), body.get("variables") or {})
    return GREETING


async def outbound(backend: UserPathBackend, example: Example) -> None:
    mark = backend.mark()
    status, body, _ = await send(backend, example)
    assert status == expected_status(example), body
    assert_documented_shape(example.response, body)
    assert body["success"] is True, body
    assert body["status"] == "dialing", body
    call_id = str(body["call_id"])
    assert call_id.startswith("call-outbound-"), call_id
    filled = fill(example, backend)[2]
    greeting = greeting_of(filled)

    if example.header("Idempotency-Key"):  # a retry with the same key places no second call
        again, replayed, headers = await send(backend, example)
        assert (again, replayed["call_id"]) == (200, call_id), replayed
        assert headers.get("Idempotent-Replayed") == "true"

    answered = await wait_status(backend, call_id, ("in-progress", *TERMINAL))
    assert answered["status"] == "in-progress", answered
    await wait_transcript(
        backend, call_id, lambda m: m["role"] == "assistant" and m["content"] == greeting
    )
    record = await hang_up(backend, call_id)
    assert record["status"] == "ended", record
    assert record["direction"] == "outbound"
    assert record["caller_phone"] == filled["destination"]  # the remote party
    assert record["assistant_phone"] in backend.numbers
    assert record["agent_id"] == backend.assistant_id
    assert record["messages"][0] == {"role": "assistant", "content": greeting}
    assert record["metadata"] == filled.get("metadata")  # as it was given (null: none)
    listed = await backend.client.get("/calls?limit=1000", headers=backend.auth())
    ours = [c for c in (await listed.json())["calls"] if c["id"] == call_id]
    assert len(ours) == 1
    assert ours[0]["metadata"] == filled.get("metadata")

    heard = await heard_text(backend, call_id, mark)  # the example is about the greeting
    wanted = GREETING_WORDS if greeting == GREETING else significant(greeting)
    assert_heard(wanted, heard)


async def outbound_scheduled(backend: UserPathBackend, example: Example) -> None:
    """The call is stored as scheduled, listed so, not dialed before its time; then it is an
    ordinary call: the PBX answers it no earlier, the callee hears the greeting."""
    mark = backend.mark()
    _, _, filled, _ = fill(example, backend)
    resp = await backend.client.post("/calls/outbound", json=filled, headers=backend.auth())
    body = await resp.json()
    assert resp.status == expected_status(example, 201), body
    assert_documented_shape(example.response, body)
    assert body["status"] == "scheduled", body
    call_id = str(body["call_id"])
    due = datetime.fromisoformat(filled["scheduled_at"])
    listed = await backend.client.get("/calls?status=scheduled", headers=backend.auth())
    assert call_id in {c["id"] for c in (await listed.json())["calls"]}
    answered = await wait_status(backend, call_id, ("in-progress", *TERMINAL), within=25)
    assert answered["status"] == "in-progress", answered
    assert datetime.fromisoformat(answered["started_at"]) >= due  # the PBX's answer, not before
    statuses = [e["data"]["to"] for e in answered["events"] if e["type"] == "status"]
    assert statuses == ["scheduled", "connecting", "in-progress"], statuses
    connecting = next(e for e in answered["events"] if e["data"].get("to") == "connecting")
    assert datetime.fromisoformat(connecting["created_at"]) >= due  # dialed at its time
    greeting = greeting_of(filled)
    await wait_transcript(
        backend, call_id, lambda m: m["role"] == "assistant" and m["content"] == greeting
    )
    record = await hang_up(backend, call_id)
    assert record["status"] == "ended", record
    assert record["scheduled_at"] is not None
    heard = await heard_text(backend, call_id, mark)
    wanted = GREETING_WORDS if greeting == GREETING else significant(greeting)
    assert_heard(wanted, heard)


async def control_say(backend: UserPathBackend, example: Example) -> None:
    mark = backend.mark()
    call_id = await live_call(backend)
    _, _, body, _ = fill(example, backend, call_id=call_id)
    status, answer, _ = await send(backend, example, call_id=call_id)
    assert status == expected_status(example), answer
    assert answer == {"success": True, "message": "Command sent successfully"}
    await wait_transcript(
        backend, call_id, lambda m: m["role"] == "assistant" and m["content"] == body["content"]
    )
    record = await hang_up(backend, call_id)
    assert {"role": "assistant", "content": body["content"]} in record["messages"]
    heard = await heard_text(backend, call_id, mark)
    assert_heard(significant(body["content"]), heard)


async def control_inject_context(backend: UserPathBackend, example: Example) -> None:
    call_id = await live_call(backend)
    _, _, body, _ = fill(example, backend, call_id=call_id)
    status, answer, _ = await send(backend, example, call_id=call_id)
    assert status == expected_status(example), answer
    assert_documented_shape(example.response, answer)
    assert answer == {"success": True, "message": "Command sent successfully"}
    if body.get("trigger_response"):
        # The offline rule-based assistant reads injected context out when asked to respond.
        wanted = significant(body["content"])
        reply = await wait_transcript(
            backend,
            call_id,
            lambda m: m["role"] == "assistant" and wanted <= words(m["content"]),
        )
        assert reply["role"] == "assistant"
    record = await hang_up(backend, call_id)
    controls = [e["data"] for e in record["events"] if e["type"] == "control"]
    assert any(c.get("content") == body["content"] for c in controls), controls
    user = [m for m in record["messages"] if m["role"] == "user"]
    assert not [m for m in user if m["content"] == body["content"]]  # silent: not the caller
    supervisor = {"role": "supervisor", "content": body["content"]}
    # A supervisor's whisper is in the transcript as theirs; other context is not.
    assert (supervisor in record["messages"]) is (body.get("source") == "supervisor")


async def control_end_call(backend: UserPathBackend, example: Example) -> None:
    call_id = await live_call(backend)
    _, _, body, _ = fill(example, backend, call_id=call_id)
    status, answer, _ = await send(backend, example, call_id=call_id)
    assert status == expected_status(example), answer
    assert answer == {"success": True, "message": "Command sent successfully"}
    record = await wait_recorded(backend, call_id)
    assert (record["status"], record["end_reason"]) == ("ended", "api-end-call"), record
    said = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
    if body.get("message"):
        assert said[-1] == body["message"], said
    again, _, _ = await send(backend, example, call_id=call_id)
    assert again == 409  # the call must be in progress


async def control_transfer(backend: UserPathBackend, example: Example) -> None:
    mark = backend.mark()
    call_id = await live_call(backend)
    _, _, body, _ = fill(example, backend, call_id=call_id)
    status, answer, _ = await send(backend, example, call_id=call_id)
    assert status == expected_status(example), answer
    assert answer["success"] is True, answer
    try:
        record = await wait_status(backend, call_id, TERMINAL, within=30)
        assert (record["status"], record["end_reason"]) == ("ended", "transferred"), record
        assert record["transferred_to"] == body["destination"]
        assert record["transferred_at"] is not None
    finally:
        await backend.release_transferred(call_id)
    await wait_recorded(backend, call_id)
    if body.get("announcement"):  # spoken to the caller, to its end, before the line changed
        heard = await heard_text(backend, call_id, mark)
        assert_heard(significant(body["announcement"]), heard)


async def list_calls(backend: UserPathBackend, example: Example) -> None:
    query = {k: v[0] for k, v in parse_qs(urlsplit(example.path).query).items()}
    call_id = ""
    if query.get("status") == "in-progress":
        call_id = await live_call(backend)
    try:
        status, body, _ = await send(backend, example)
        assert status == expected_status(example), body
        assert_documented_shape({"calls": [], "pagination": {}}, body)
        if "limit" in query:
            assert body["pagination"]["limit"] == int(query["limit"])
        if "status" in query:
            assert {c["status"] for c in body["calls"]} <= {query["status"]}
        if call_id:
            assert call_id in [c["id"] for c in body["calls"]]
    finally:
        if call_id:
            await hang_up(backend, call_id)


async def get_call_example(backend: UserPathBackend, example: Example) -> None:
    finished = await finished_call(backend)
    status, body, _ = await send(backend, example, call_id=finished["id"])
    assert status == expected_status(example), body
    assert_documented_shape(example.response, body)
    assert body["id"] == finished["id"]
    assert body["status"] == "ended"
    assert body["messages"][0] == {"role": "assistant", "content": GREETING}
    assert body["analysis_result"]["summary"], body["analysis_result"]


async def call_events(backend: UserPathBackend, example: Example) -> None:
    finished = await finished_call(backend)
    status, text, headers = await send(backend, example, call_id=finished["id"])
    assert status == expected_status(example), text
    assert headers["Content-Type"].startswith("text/event-stream")
    data = [json.loads(line[6:]) for line in str(text).splitlines() if line.startswith("data: ")]
    statuses = [d["data"].get("to") for d in data if d["type"] == "status"]
    assert statuses[-1] == "ended", statuses
    said = [d["data"]["content"] for d in data if d["type"] == "transcript"]
    assert GREETING in said, said


async def list_resources(backend: UserPathBackend, example: Example) -> None:
    status, body, _ = await send(backend, example)
    assert status == expected_status(example), body
    if example.path == "/health":
        return
    found = json.dumps(body)
    wanted = {
        "/assistants": backend.assistant_id,
        "/phone-numbers": backend.numbers[0],
        "/trunks": "carrier",
    }[example.path]
    assert wanted in found, body


async def create_webhook(backend: UserPathBackend, example: Example) -> None:
    status, body, _ = await send(backend, example)
    assert status == expected_status(example, 201), body
    assert_documented_shape(example.response, body)
    assert str(body["id"]).startswith("we_")
    assert str(body["secret"]).startswith("whsec_")
    assert body["event_types"] == example.body["event_types"]
    assert body["enabled"] is True


async def _a_webhook(backend: UserPathBackend) -> str:
    resp = await backend.client.post(
        "/webhooks", json={"url": backend.webhooks.url}, headers=backend.auth()
    )
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def list_webhooks(backend: UserPathBackend, example: Example) -> None:
    webhook_id = await _a_webhook(backend)
    status, body, _ = await send(backend, example)
    assert status == expected_status(example), body
    listed = {w["id"]: w for w in body["webhooks"]}
    assert webhook_id in listed
    assert "secret" not in listed[webhook_id]


async def get_webhook(backend: UserPathBackend, example: Example) -> None:
    webhook_id = await _a_webhook(backend)
    status, body, _ = await send(backend, example, webhook_id=webhook_id)
    assert status == expected_status(example), body
    assert body["id"] == webhook_id
    assert "secret" not in body


async def delete_webhook(backend: UserPathBackend, example: Example) -> None:
    webhook_id = await _a_webhook(backend)
    status, body, _ = await send(backend, example, webhook_id=webhook_id)
    assert status == expected_status(example, 204), body
    gone, _, _ = await send(backend, example, webhook_id=webhook_id)
    assert gone == 404


async def create_campaign(backend: UserPathBackend, example: Example) -> None:
    """The campaign starts with its contacts waiting or being called; the user sees it listed,
    cancels it, and ends the calls it had placed."""
    status, body, _ = await send(backend, example)
    assert status == expected_status(example, 201), body
    assert_documented_shape(example.response, body)
    campaign_id = body["id"]
    assert body["progress"]["total"] == len(example.body["contacts"])
    listed = await backend.client.get("/campaigns", headers=backend.auth())
    assert campaign_id in {c["id"] for c in (await listed.json())["campaigns"]}
    cancelled = await backend.client.post(
        f"/campaigns/{campaign_id}/cancel", headers=backend.auth()
    )
    assert (await cancelled.json())["status"] == "cancelled"
    contacts = await backend.client.get(
        f"/campaigns/{campaign_id}/contacts", headers=backend.auth()
    )
    rows = (await contacts.json())["contacts"]
    assert [r["variables"]["invoice"] for r in rows] == ["A-17", "B-3"]
    for row in rows:  # a call placed before the cancel goes on until ended
        if row["call_id"] is not None:
            await backend.client.post(
                f"/calls/{row['call_id']}/control",
                json={"type": "end-call"},
                headers=backend.auth(),
            )
            await wait_status(backend, row["call_id"], TERMINAL, within=20)


Scenario = Callable[[UserPathBackend, Example], Awaitable[None]]


async def provider_keys(backend: UserPathBackend, example: Example) -> None:
    """Create, list, rotate or delete an organization's provider key: the answers show it
    masked, never the key; a rotation or deletion acts on a key of the user's own."""
    created = await backend.client.post(
        "/provider-keys",
        json={
            "name": f"own-{example.method.lower()}",
            "provider": "openai",
            "api_key": "sk-" + "x" * 20 + "own1",
        },
        headers=backend.auth(),
    )
    assert created.status == 201, await created.text()
    key_id = str((await created.json())["id"])
    try:
        default = {"POST": 201, "DELETE": 204}.get(example.method, 200)
        status, body, _ = await send(backend, example, webhook_id=key_id)
        assert status == expected_status(example, default), body
        assert_documented_shape(example.response, body)
        sent = example.body.get("api_key") if isinstance(example.body, dict) else None
        if sent:  # create or rotate: the answer is masked
            assert body["api_key"] == "****" + str(sent)[-4:], body
            assert str(sent) not in json.dumps(body)
        listed = await backend.client.get("/provider-keys", headers=backend.auth())
        names = {k["name"]: k for k in (await listed.json())["provider_keys"]}
        if example.method == "DELETE":
            assert f"own-{example.method.lower()}" not in names
        if example.method == "POST":
            await backend.client.delete(f"/provider-keys/{body['id']}", headers=backend.auth())
    finally:
        await backend.client.delete(f"/provider-keys/{key_id}", headers=backend.auth())


async def list_voices(backend: UserPathBackend, example: Example) -> None:
    status, body, _ = await send(backend, example)
    assert status == expected_status(example), body
    voices = {v["id"]: v for v in body["voices"]}
    assert voices[PIPER_VOICE]["sample_rate"] == 22050, voices.get(PIPER_VOICE)


async def voice_preview(backend: UserPathBackend, example: Example) -> None:
    """The WAV the user saves says the text, as the offline recogniser hears it."""
    method, path, body, headers = fill(example, backend)
    resp = await backend.client.request(method, path, data=json.dumps(body), headers=headers)
    assert resp.status == expected_status(example), await resp.text()
    assert resp.content_type == "audio/wav"
    with wave.open(io.BytesIO(await resp.read())) as wav:
        rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
    assert speech_seconds(resample_pcm16(pcm, rate, 16000), 16000) > 0.5
    assert_heard(significant(body["text"]), await transcribe(pcm, rate))


async def usage(backend: UserPathBackend, example: Example) -> None:
    """The report (JSON, or CSV when the example asks for it) of the organization's calls."""
    status, body, headers = await send(backend, example)
    assert status == expected_status(example), body
    wants_csv = "format=csv" in example.path or ("Accept", "text/csv") in example.headers
    if wants_csv:
        assert headers["Content-Type"].startswith("text/csv"), headers
        assert str(body).splitlines()[0] == ",".join(CSV_COLUMNS), body
        return
    assert set(body) == {"start_date", "end_date", "group_by", "groups", "totals"}, body
    assert body["totals"]["calls"] == sum(g["calls"] for g in body["groups"]), body


# The operator's card for the billing examples (``voicedock billing rate-cards set``'s file).
RATE_CARD = {"currency": "EUR", "increment": "1/1", "rates": [{"per_minute": "0.60"}]}


async def billing(backend: UserPathBackend, example: Example) -> None:
    """The card the operator set, as the organization reads it; a statement as documented, and
    a call placed through the PBX and ended, priced by the card and counted in its month's
    statement (the example's month, or this one's)."""
    card = await set_rate_card(backend.service.store, ACME, RATE_CARD, utcnow())
    if urlsplit(example.path).path == "/billing/rate-card":
        status, body, _ = await send(backend, example)
        assert status == expected_status(example), body
        assert (body["id"], body["version"]) == (card.id, card.version), body
        assert body["terms"]["currency"] == "EUR", body
        return
    call_id = await place(backend, backend.silent)
    await wait_status(backend, call_id, ("in-progress",))
    await hang_up(backend, call_id)

    async def rated() -> bool:
        return (await get_call(backend, call_id))["cost"] is not None

    await until(rated, 15)
    cost = (await get_call(backend, call_id))["cost"]
    assert (cost["currency"], cost["rate_card_id"]) == ("EUR", card.id), cost
    method, path, _, headers = fill(example, backend)
    if "format=pdf" in path:
        resp = await backend.client.request(method, path, headers=headers)
        assert resp.status == expected_status(example), await resp.text()
        assert resp.content_type == "application/pdf"
        assert (await resp.read()).startswith(b"%PDF-")
        return
    status, body, _ = await send(backend, example)
    assert status == expected_status(example), body
    assert set(body) >= {"organization", "month", "lines", "totals"}, body
    month = utcnow().strftime("%Y-%m")
    resp = await backend.client.get(f"/billing/statements?month={month}", headers=headers)
    now = await resp.json()
    assert resp.status == 200, now
    [total] = [t for t in now["totals"] if t["currency"] == "EUR"]
    assert total["calls"] >= 1, now
    assert sum(Decimal(line["amount"]) for line in now["lines"]) == Decimal(total["amount"]), now


async def get_organization(backend: UserPathBackend, example: Example) -> None:
    status, body, _ = await send(backend, example)
    assert status == expected_status(example), body
    assert body["name"] == ACME, body
    assert sorted(body["limits"]["phone_numbers"]) == sorted(backend.numbers), body


async def patch_organization(backend: UserPathBackend, example: Example) -> None:
    """Sent with an admin key as the example says; then an assistant created with a name only
    greets the callee with the organization's default first message."""
    admin, _ = await issue_api_key(backend.service.store, ACME, "admin", KeyScope.ADMIN)
    method, path, sent, headers = fill(example, backend)
    as_admin = {**headers, "Authorization": f"Bearer {admin}"}
    resp = await backend.client.request(method, path, json=sent, headers=as_admin)
    body = await resp.json()
    assert resp.status == expected_status(example), body
    assert body["assistant_defaults"] == sent["assistant_defaults"], body
    greeting = sent["assistant_defaults"]["first_message"]
    try:
        created = await backend.client.post(
            "/assistants", json={"name": "Front desk"}, headers=backend.auth()
        )
        assert created.status == 201, await created.text()
        assistant_id = (await created.json())["id"]
        read = await backend.client.get(f"/assistants/{assistant_id}", headers=backend.auth())
        assert (await read.json())["first_message"] == greeting
        mark = backend.mark()
        call_id = await place(backend, backend.silent, assistant_id=assistant_id)
        await wait_status(backend, call_id, ("in-progress",))
        await wait_transcript(
            backend, call_id, lambda m: m["role"] == "assistant" and m["content"] == greeting
        )
        await hang_up(backend, call_id)
        assert_heard(significant(greeting), await heard_text(backend, call_id, mark))
    finally:  # the other examples' assistants keep their own settings
        reset = {"assistant_defaults": None, "display_name": None}
        await backend.client.patch("/organization", json=reset, headers=as_admin)


async def agents(backend: UserPathBackend, example: Example) -> None:
    """The deprecated alias answers as ``/assistants`` does, flagged as deprecated: what it
    lists, makes or changes is the assistant ``/assistants`` reads."""
    h = backend.auth()
    made = await backend.client.post("/assistants", json={"name": "Agent example"}, headers=h)
    assert made.status == 201, await made.text()
    agent_id = str((await made.json())["id"])
    try:
        default = 201 if example.method == "POST" else 200
        status, body, headers = await send(backend, example, webhook_id=agent_id)
        assert status == expected_status(example, default), body
        assert headers.get("Deprecation") == "true", dict(headers)
        assert "-> /assistants" in headers.get("Warning", ""), dict(headers)
        if example.method == "GET":
            assert {backend.assistant_id, agent_id} <= {a["id"] for a in body["assistants"]}
            return
        read = await backend.client.get(f"/assistants/{body['id']}", headers=h)
        assert await read.json() == body
        for key, value in example.body.items():
            assert body[key] == value, (key, body)
        if example.method == "POST":
            await backend.client.delete(f"/assistants/{body['id']}", headers=h)
    finally:
        await backend.client.delete(f"/assistants/{agent_id}", headers=h)


TEMPLATE_EXAMPLE = {"name": "Example plan", "summary_prompt": "Say who called."}


async def analysis_templates(backend: UserPathBackend, example: Example) -> None:
    """Create, list, change or delete an analysis template; a created one, named by an
    assistant, is the analysis plan of that assistant's call on the PBX and is kept (409)
    while the assistant names it."""
    h = backend.auth()
    made = await backend.client.post("/analysis-templates", json=TEMPLATE_EXAMPLE, headers=h)
    assert made.status == 201, await made.text()
    template_id = str((await made.json())["id"])
    try:
        default = {"POST": 201, "DELETE": 204}.get(example.method, 200)
        status, body, _ = await send(backend, example, webhook_id=template_id)
        assert status == expected_status(example, default), body
        if example.method == "GET":
            assert template_id in {t["id"] for t in body["analysis_templates"]}
        elif example.method == "DELETE":
            gone = await backend.client.get(f"/analysis-templates/{template_id}", headers=h)
            assert gone.status == 404
        else:
            for key, value in example.body.items():
                assert body[key] == value, (key, body)
        if example.method == "POST":
            await _analysis_template_call(backend, str(body["id"]), example.body)
    finally:
        await backend.client.delete(f"/analysis-templates/{template_id}", headers=h)


async def _analysis_template_call(
    backend: UserPathBackend, template_id: str, sent: dict[str, Any]
) -> None:
    h = backend.auth()
    named = {"name": "Templated", "analysis_plan": {"template_id": template_id}}
    made = await backend.client.post("/assistants", json=named, headers=h)
    assert made.status == 201, await made.text()
    assistant_id = str((await made.json())["id"])
    try:
        call_id = await place(backend, backend.silent, assistant_id=assistant_id)
        await wait_status(backend, call_id, ("in-progress",))
        await hang_up(backend, call_id)
        call = await backend.service.store.get_call(None, call_id)
        assert call is not None
        plan = {k: v for k, v in sent.items() if k != "name"}
        assert call.assistant_config.analysis_plan == plan
        kept = await backend.client.delete(f"/analysis-templates/{template_id}", headers=h)
        assert kept.status == 409
    finally:
        await backend.client.delete(f"/assistants/{assistant_id}", headers=h)
        await backend.client.delete(f"/analysis-templates/{template_id}", headers=h)


SCENARIOS: dict[str, Scenario] = {
    "outbound-reference": outbound,
    "outbound-hybrid": outbound,
    "outbound-transient": outbound,
    "outbound-scheduled": outbound_scheduled,
    "control-say": control_say,
    "control-inject-context": control_inject_context,
    "control-end-call": control_end_call,
    "control-transfer": control_transfer,
    "list-calls": list_calls,
    "get-call": get_call_example,
    "call-events": call_events,
    "list-resources": list_resources,
    "create-webhook": create_webhook,
    "list-webhooks": list_webhooks,
    "get-webhook": get_webhook,
    "delete-webhook": delete_webhook,
    "create-campaign": create_campaign,
    "list-voices": list_voices,
    "voice-preview": voice_preview,
    "usage": usage,
    "billing": billing,
    "provider-keys": provider_keys,
    "get-organization": get_organization,
    "patch-organization": patch_organization,
    "agents": agents,
    "analysis-templates": analysis_templates,
}
