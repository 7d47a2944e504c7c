"""``CallServers``: each call's server, kept while the call is on it, asked of every server
while not known."""

from __future__ import annotations

import pytest

from voicedock.errors import PbxError
from voicedock.pbx.base import PbxEvent, PbxEventKind
from voicedock.pbx.call_servers import CallServers

pytestmark = pytest.mark.unit


def test_a_known_call_goes_to_its_server_and_an_unknown_one_to_every_server() -> None:
    where = CallServers(["a", "b"])
    where.place("call-1", "b")
    assert where.of("call-1") == "b"
    assert where.carrier("call-1") == "b"
    assert where.candidates("call-1") == ["b"]
    assert where.candidates("call-2") == ["a", "b"]
    with pytest.raises(PbxError, match="none of the configured PBXs"):
        where.carrier("call-2")
    calls = {"call-1": "ref-1", "call-2": None}
    assert where.on("a", calls) == {"call-2": None}
    assert where.on("b", calls) == calls


def test_a_call_that_left_its_server_is_forgotten_and_another_servers_report_is_not_its() -> None:
    where = CallServers(["a", "b"])
    where.place("call-1", "a")
    where.reported("b", PbxEvent("call-1", PbxEventKind.HANGUP))
    assert where.of("call-1") == "a"  # not the server carrying it
    where.reported("a", PbxEvent("call-1", PbxEventKind.ANSWERED))
    assert where.of("call-1") == "a"
    where.reported("a", PbxEvent("call-1", PbxEventKind.TRANSFERRED))
    assert where.of("call-1") is None


def test_a_located_call_is_on_its_stored_server_while_that_server_is_configured() -> None:
    where = CallServers(["a", "b"])
    where.locate("call-1", "b")
    where.locate("call-2", "gone")
    where.locate("call-3", None)
    where.place("call-0", "b")
    assert (where.of("call-1"), where.of("call-2"), where.of("call-3")) == ("b", None, None)
    assert where.carried_by("b") == ["call-0", "call-1"]
