"""The one-time token of a FreeSWITCH audio stream never reaches a log line.

FreeSWITCH's mod_audio_stream dials ``<media>/freeswitch/audio/<uuid>/<token>``: the token is
what keeps anyone else who can reach the media port from taking the call's audio. A call placed
through REST on the fake FreeSWITCH (which connects to the URL as the module does, and reports a
stream error naming it as the module may) is run with every logger at DEBUG; no record holds the
token, while FreeSWITCH was handed it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from fakes.world import DESTINATION, SUPPORT_ID
from pbx.freeswitch.live_service import TERMINAL, running_freeswitch_service, until
from voicedock.pbx.freeswitch.media.stream_server import mask_stream_tokens

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


def stream_urls(commands: list[str]) -> list[str]:
    """The URLs of the ``uuid_audio_stream <uuid> start <url> ...`` commands sent."""
    return [
        c.split()[4] for c in commands if c.startswith("api uuid_audio_stream ") and " start " in c
    ]


async def test_no_log_line_carries_a_stream_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp's access log included
    async with running_freeswitch_service(tmp_path) as live:
        far = live.far_end
        status, body = await live.post(
            "/calls/outbound", {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
        )
        assert status == 200, body
        call_id = str(body["call_id"])
        await live.wait_status(call_id, ("in-progress", *TERMINAL))
        channel = far.channel_of(call_id)
        await until(lambda: live.pbx.media.session(channel) is not None)  # the stream is up
        (url,) = stream_urls(far.commands)
        token = url.rsplit("/", 1)[1]
        assert len(token) >= 24
        # The module reports a stream error naming its URL (what the hub logs of such events).
        headers = far.fake._channel_headers(far.fake.channels[channel], "CUSTOM")
        error = f'{{"status":"error","message":{{"code":1,"error":"lost {url}"}}}}'
        far.fake.emit(headers | {"Event-Subclass": "mod_audio_stream::error"}, error)
        await until(lambda: "mod_audio_stream::error" in caplog.text)
        await asyncio.sleep(0.2)  # the call's audio flows
        status, _ = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
        assert status == 200
        await live.wait_status(call_id, TERMINAL)
    leaked = [r.getMessage() for r in caplog.records if token in r.getMessage()]
    assert leaked == []
    # What the logs show instead: the stream's path with the token masked.
    assert f"/freeswitch/audio/{channel}/****" in caplog.text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "ws://10.0.0.5:8090/freeswitch/audio/4e1b-2/Ab_c-9xYz0123456789abcd mono 8k",
            "ws://10.0.0.5:8090/freeswitch/audio/4e1b-2/**** mono 8k",
        ),
        ('{"error":"/freeswitch/audio/u/t0ken"}', '{"error":"/freeswitch/audio/u/****"}'),
        ("no stream here", "no stream here"),
    ],
)
def test_mask_stream_tokens(text: str, shown: str) -> None:
    assert mask_stream_tokens(text) == shown
