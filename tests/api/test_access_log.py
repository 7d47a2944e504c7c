"""The access log (``aiohttp.access``): one line per request of a node, no phone number whole.

An inbound call's id carries the caller's number, and a path or a query may name a number
(``DELETE /do-not-call/%2B31612345678``, ``GET /calls?caller=...``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from fakes.world import make_settings
from process_helpers import free_ports
from voicedock.api import serve
from voicedock.api.app import create_app
from voicedock.api.app_keys import SERVICE
from voicedock.domain.ids import mask_call_id
from voicedock.validation import mask_numbers

pytestmark = pytest.mark.unit

INBOUND_ID = "call-_+31612345678_Ab3dEf9hJk2m"  # the shape of an inbound call's id
# A line as ``voicedock serve`` writes it: remote, request line, status, size, time taken.
LINE = re.compile(r'127\.0\.0\.1 "(?P<request>[^"]*)" (?P<status>[0-9]{3}) [0-9]+ [0-9.]+s')


async def test_a_served_node_logs_each_request_with_the_numbers_in_it_masked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The app as ``serve`` runs it (``voicedock serve``, each of its workers, the nodes the
    tests and the soak bench start) logs each request in the same one format, whoever runs it."""
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'node.db'}"))
    port = free_ports(1)
    sent = [
        ("GET", "/health"),
        ("GET", f"/calls/{INBOUND_ID}"),
        ("DELETE", "/do-not-call/%2B31612345678"),
        ("GET", "/calls?caller=+4915112345678&destination=%2b31612345678"),
    ]
    statuses: list[int] = []

    async def ask_then_drain() -> None:
        try:
            async with aiohttp.ClientSession() as http:
                for method, path in sent:
                    url = URL(f"http://127.0.0.1:{port}{path}", encoded=True)  # sent as written
                    async with http.request(method, url) as resp:
                        statuses.append(resp.status)
        finally:
            app[SERVICE].drain.request("the test's requests are made")  # serve returns

    asking: list[asyncio.Task[None]] = []
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    async with asyncio.timeout(30):
        await serve.serve(
            app,
            host="127.0.0.1",
            port=port,
            ready=lambda: asking.append(asyncio.create_task(ask_then_drain())),
        )
        await asking[0]
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == len(sent) == len(statuses), lines
    logged = [LINE.fullmatch(line) for line in lines]
    assert all(logged), lines
    assert [(m["request"], int(m["status"])) for m in logged if m] == [
        ("GET /health HTTP/1.1", statuses[0]),
        (f"GET /calls/{mask_call_id(INBOUND_ID)} HTTP/1.1", statuses[1]),
        ("DELETE /do-not-call/+316***78 HTTP/1.1", statuses[2]),
        ("GET /calls?caller=+491***78&destination=+316***78 HTTP/1.1", statuses[3]),
    ]
    assert statuses[0] == 200
    everything = "\n".join(lines)
    assert "31612345678" not in everything
    assert "4915112345678" not in everything


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        (f"/calls/{INBOUND_ID}/events", "/calls/call-_+316***78_Ab3dEf9hJk2m/events"),
        ("/do-not-call/%2B31612345678", "/do-not-call/+316***78"),
        ("/do-not-call/%2b31612345678", "/do-not-call/+316***78"),
        ("/calls?caller=+4915112345678&x=1", "/calls?caller=+491***78&x=1"),
        # Not a number: no "+" before the digits, or too few of them, or an outbound call id.
        ("/calls?start_date=20261126&limit=100", "/calls?start_date=20261126&limit=100"),
        ("/x?n=+123456", "/x?n=+123456"),
        ("/calls/call-outbound-a1B2c3D4e5F6g7H8", "/calls/call-outbound-a1B2c3D4e5F6g7H8"),
        ("/health", "/health"),
    ],
)
def test_a_path_and_query_show_each_number_masked_and_nothing_else_changed(
    raw: str, logged: str
) -> None:
    assert mask_numbers(raw) == logged
