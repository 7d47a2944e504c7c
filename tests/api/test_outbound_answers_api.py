"""``POST /calls/outbound``'s answers, as the API writes them: 200 ``dialing`` for a call placed,
201 ``scheduled`` for a call to dial later, and with an ``Idempotency-Key`` the same bytes again
on every replay — also for an answer an earlier version of voicedock stored."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.conftest import Api
from api.test_calls_api import post_outbound
from fakes.world import ACME, DESTINATION, SUPPORT_ID, org_id
from voicedock.api.body import canonical_hash_input
from voicedock.domain.ids import new_outbound_call_id, room_name_for
from voicedock.domain.records import IdempotencyRecord

pytestmark = pytest.mark.unit

ACME_ID = org_id(ACME)


def later(minutes: int) -> str:
    moment = datetime.now(UTC) + timedelta(minutes=minutes)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.every_backend  # its cases query the store each its own way
@pytest.mark.parametrize("scheduled", [False, True], ids=["placed", "scheduled"])
async def test_a_replay_answers_the_first_answer_byte_for_byte(api: Api, scheduled: bool) -> None:
    body: dict[str, Any] = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
    if scheduled:
        body["scheduled_at"] = later(60)
    first = await post_outbound(api, body, **{"Idempotency-Key": "same-bytes"})
    again = await post_outbound(api, body, **{"Idempotency-Key": "same-bytes"})
    assert first.status == again.status == (201 if scheduled else 200)
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers.get("Idempotent-Replayed") == "true"
    raw = await first.read()
    assert await again.read() == raw
    answer = json.loads(raw)
    call_id = answer["call_id"]
    expected = {"success": True, "call_id": call_id, "room_name": room_name_for(call_id)}
    if scheduled:
        assert answer == {
            **expected,
            "status": "scheduled",
            "scheduled_at": body["scheduled_at"],
            "latest_at": answer["latest_at"],
        }
        assert list(answer) == [
            "success",
            "call_id",
            "status",
            "room_name",
            "scheduled_at",
            "latest_at",
        ]
    else:
        assert answer == {**expected, "status": "dialing"}
        assert list(answer) == ["success", "call_id", "status", "room_name"]


async def test_an_answer_an_earlier_version_stored_is_replayed_as_stored(api: Api) -> None:
    """A database keeps the records of keys answered before an upgrade: each replays exactly
    the body stored with it, and no call is placed again."""
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
    call_id = new_outbound_call_id()
    stored = {
        "success": True,
        "call_id": call_id,
        "status": "dialing",
        "room_name": room_name_for(call_id),
    }
    digest = hashlib.sha256(canonical_hash_input(body)).hexdigest()
    record = IdempotencyRecord(ACME_ID, "before-upgrade", digest, 200, stored, datetime.now(UTC))
    async with api.service.store.transaction() as tx:
        await tx.put_idempotency(record)
    replay = await post_outbound(api, body, **{"Idempotency-Key": "before-upgrade"})
    assert replay.status == 200
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert await replay.read() == json.dumps(stored, separators=(",", ":")).encode()
    assert api.pbx.originated == []
