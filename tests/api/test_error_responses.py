"""The error middleware (``api/error_responses.py``): what a failure inside a handler becomes."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from voicedock.api.error_responses import errors

pytestmark = pytest.mark.unit


async def test_a_client_gone_mid_request_is_no_error_of_the_service(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client that gives up while its body is read (its own timeout: aiohttp raises
    ``ConnectionResetError`` from the read) leaves an info line, not an error with a
    traceback: nothing failed on the service's side."""

    async def reading(_: web.Request) -> web.StreamResponse:
        raise ConnectionResetError("Connection lost")

    caplog.set_level("INFO", logger="voicedock.api")
    response = await errors(make_mocked_request("POST", "/calls/outbound"), reading)
    assert response.status == 400
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert "closed the connection" in caplog.records[0].getMessage()


async def test_an_unexpected_error_is_a_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def failing(_: web.Request) -> web.StreamResponse:
        raise RuntimeError("a bug")

    response = await errors(make_mocked_request("GET", "/calls"), failing)
    assert response.status == 500
    assert [r.levelname for r in caplog.records] == ["ERROR"]
