"""Log context (the call id bound per task, masked) and exception descriptions."""

from __future__ import annotations

import asyncio
import logging

import pytest

from api.conftest import Api
from fakes.world import ACME_NUMBERS
from voicedock import logs
from voicedock.domain.ids import mask_call_id
from voicedock.errors import PbxError
from voicedock.pbx.base import InboundCall, PbxEvent, PbxEventKind

pytestmark = pytest.mark.unit

CALLER = "+31623731537"


def test_describe_opens_exception_groups_to_their_leaves() -> None:
    group = ExceptionGroup(
        "unhandled errors in a TaskGroup",
        [PbxError("channel not found"), ExceptionGroup("inner", [OSError("connection reset")])],
    )
    assert logs.describe(group) == (
        "ExceptionGroup[PbxError: channel not found, ExceptionGroup[OSError: connection reset]]"
    )
    assert logs.describe(TimeoutError()) == "TimeoutError"


def test_describe_masks_numbers_and_hides_library_messages() -> None:
    shown = logs.describe(PbxError(f"ARI DELETE /channels/call-_{CALLER}_XqaQxRRgAzYc: 404"))
    assert CALLER not in shown
    assert "+316***37" in shown
    encoded = logs.describe(PbxError("ARI GET /endpoints?caller=%2B31623731537: 404"))
    assert "31623731537" not in encoded  # a number in a URL's query, its "+" encoded
    assert "+316***37" in encoded

    class LibraryError(Exception):
        pass

    LibraryError.__module__ = "somelib"
    assert logs.describe(LibraryError("https://x/?key=secret")) == "LibraryError"


async def test_call_id_bound_per_task_and_masked(caplog: pytest.LogCaptureFixture) -> None:
    logs.configure(caplog.handler)
    log = logging.getLogger("voicedock.test")
    call_id = f"call-_{CALLER}_XqaQxRRgAzYc"

    async def one_call() -> None:
        logs.bind_call_id(call_id)
        log.warning("media lost")

    with caplog.at_level(logging.INFO, logger="voicedock"):
        await asyncio.create_task(one_call())
        log.warning("not about a call")
    call_line, other_line = (caplog.handler.format(r) for r in caplog.records)
    assert call_line.endswith(f"media lost [call {mask_call_id(call_id)}]")
    assert CALLER not in call_line
    assert other_line.endswith("not about a call")
    assert logs.current_call_id() is None  # the task's binding stayed in the task


async def test_engine_lines_of_an_inbound_call_never_show_the_number(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    logs.configure(caplog.handler)
    with caplog.at_level(logging.DEBUG, logger="voicedock"):
        call_id = await api.service.engine.inbound.accept(
            InboundCall("chan-1", CALLER, ACME_NUMBERS[0])
        )
        assert call_id is not None
        assert CALLER in call_id
        api.pbx.fail_commands = PbxError("channel not found")
        await api.service.runner.events.handle_pbx_event(PbxEvent(call_id, PbxEventKind.ANSWERED))
        await api.service.runner.events.handle_pbx_event(PbxEvent(call_id, PbxEventKind.HANGUP, 16))
    calls = [r for r in caplog.records if r.name.startswith("voicedock.calls")]
    assert calls, caplog.text
    masked = mask_call_id(call_id)
    for record in calls:
        line = caplog.handler.format(record)
        assert CALLER not in line, line
        assert masked in line, line
        assert getattr(record, "call_id", None) == masked
