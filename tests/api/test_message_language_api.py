"""Each message of a call that followed the caller's language says it: GET /calls/{id}
returns ``language`` on the messages recorded with one (``de`` for a German turn and the
German reply), and none on a message without."""

from __future__ import annotations

import pytest

from api.conftest import Api
from api.contract import conforms
from api.test_calls_api import place
from voicedock.calls.live.record import call_message
from voicedock.pipeline.frames import TranscriptEntry

pytestmark = pytest.mark.unit


async def test_the_call_says_the_language_of_each_message(api: Api) -> None:
    call_id = await place(api)
    said = [
        TranscriptEntry("assistant", "Hello, dental clinic.", 1.0, 2.0, language="en"),
        TranscriptEntry("user", "Guten Tag, einen Termin bitte.", 3.0, 5.0, language="de"),
        TranscriptEntry("assistant", "Gerne, wann passt es Ihnen?", 6.0, 7.0, language="de"),
        TranscriptEntry("assistant", "Goodbye.", 8.0, 9.0),
    ]
    async with api.service.store.transaction() as tx:
        for entry in said:
            await tx.add_message(call_message(call_id, entry))
    resp = await api.client.get(f"/calls/{call_id}", headers=api.auth())
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    conforms(got, "Call")
    languages = [(m["content"], m.get("language")) for m in got["messages"]]
    assert languages == [
        ("Hello, dental clinic.", "en"),
        ("Guten Tag, einen Termin bitte.", "de"),
        ("Gerne, wann passt es Ihnen?", "de"),
        ("Goodbye.", None),
    ]
    assert "language" not in got["messages"][3]
