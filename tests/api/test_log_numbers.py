"""No log line carries a phone number whole, whatever its form: written without ``+``, in a SIP
URI or in a dial string (``validation.mask_numbers``). Driven where numbers enter: a transfer
to a SIP URI the policy refuses (its security event too), an originate the PBX refuses with
its dial string in the error, and a node's own log handler (``logs.configure``)."""

from __future__ import annotations

import io
import logging

import pytest

from api.conftest import Api
from api.test_calls_api import post_outbound
from api.test_control_api import active_call, control
from fakes.world import DESTINATION, SUPPORT_ID
from voicedock.errors import PbxError
from voicedock.logs import configure

pytestmark = pytest.mark.unit

NUMBER = "4930123456789"
SHOWN = "4930***89"


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


async def test_a_refused_transfer_to_a_sip_uri_logs_its_number_masked(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    call_id = await active_call(api)
    caplog.set_level(logging.INFO)
    destination = f"sip:{NUMBER}@carrier.example"
    resp = await control(api, call_id, {"type": "transfer", "destination": destination})
    assert resp.status == 403, await resp.text()
    lines = logged(caplog)
    assert f"sip:{SHOWN}@…" in lines
    assert NUMBER not in lines
    events = await api.service.store.list_events(call_id)
    (security,) = [e.data for e in events if e.type == "security"]
    assert security["destination"] == f"sip:{SHOWN}@…"


async def test_an_originate_refused_with_its_dial_string_logs_it_masked(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for said in (f"PJSIP/{NUMBER}@carrier", f"sofia/gateway/carrier/00{NUMBER}", "(555) 123-4567"):
        api.pbx.fail_next_originate = PbxError(f"Allocation failed: {said} is unreachable")
        resp = await post_outbound(api, {"destination": DESTINATION, "assistant_id": SUPPORT_ID})
        assert resp.status == 503, await resp.text()
    lines = logged(caplog)
    assert f"PJSIP/{SHOWN}@carrier" in lines
    assert NUMBER not in lines
    assert "123-4567" not in lines


def test_a_node_s_log_handler_masks_every_number_a_message_holds() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    configure(handler)
    log = logging.getLogger("voicedock.test-log-numbers")
    log.addHandler(handler)
    try:
        log.warning("caller %s via %s on port %d", NUMBER, f"tel:{NUMBER}", 5060)
    finally:
        log.removeHandler(handler)
    line = stream.getvalue()
    assert NUMBER not in line
    assert f"caller {SHOWN} via tel:{SHOWN} on port 5060" in line
