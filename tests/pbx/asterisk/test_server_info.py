"""What an Asterisk server is, as its ARI says: the release in the version strings distributions
give, and the running modules from ``/asterisk/modules`` (unknown, never empty, when ARI does
not list them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest

from voicedock.errors import PbxUnavailable
from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.asterisk.server_info import (
    AsteriskServerInfo,
    parse_release,
    read_server_info,
)

if TYPE_CHECKING:
    from voicedock.pbx.asterisk.ari.client import AriClient

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("version", "release"),
    [
        ("22.6.0", (22, 6, 0)),
        ("16.28.0~dfsg-0+deb11u4", (16, 28, 0)),  # Debian bullseye
        ("22.10.1+dfsg+~cs6.15.60671435-1", (22, 10, 1)),  # Debian trixie-like
        ("certified/18.9-cert5", (18, 9, 0)),
        ("certified-20.7-cert3", (20, 7, 0)),
        ("18.20.2", (18, 20, 2)),
        ("1:16.28.0~dfsg-0+deb11u4", (16, 28, 0)),  # with the package's epoch
        ("GIT-master-abc1234", None),
        ("GIT-master-deadbeef", None),
        ("", None),
    ],
)
def test_parse_release(version: str, release: tuple[int, int, int] | None) -> None:
    assert parse_release(version) == release


class StubAri:
    """ARI's two answers; ``modules`` an exception to raise instead of the list."""

    def __init__(self, info: Any, modules: Any) -> None:
        self.info = info
        self.modules = modules
        self.asked: list[tuple[str, str, dict[str, str] | None]] = []

    async def request(self, method: str, path: str, params: dict[str, str] | None = None) -> Any:
        self.asked.append((method, path, params))
        if path == "/asterisk/info":
            return self.info
        if path == "/asterisk/modules":
            if isinstance(self.modules, BaseException):
                raise self.modules
            return self.modules
        raise AssertionError(f"unexpected {method} {path}")


async def read(info: Any, modules: Any) -> tuple[AsteriskServerInfo, StubAri]:
    ari = StubAri(info, modules)
    return await read_server_info(cast("AriClient", ari)), ari


MODULES = [
    {"name": "chan_websocket.so", "status": "Running", "support_level": "core"},
    {"name": "chan_rtp.so", "status": "Running"},
    {"name": "chan_audiosocket.so", "status": "Not Running"},
    {"name": "res_ari.so", "status": "running"},
    {"name": "app_dial"},  # no status: taken as running
    {"name": 42, "status": "Running"},  # not a name
    "chan_pjsip.so",  # not an entry
]


async def test_the_version_and_the_running_modules() -> None:
    info, ari = await read({"system": {"version": "16.28.0~dfsg-0+deb11u4"}}, MODULES)
    assert info.version == "16.28.0~dfsg-0+deb11u4"
    assert info.release == (16, 28, 0)
    assert info.modules == frozenset({"chan_websocket", "chan_rtp", "res_ari", "app_dial"})
    assert info.has("chan_rtp") is True
    assert info.has("chan_audiosocket") is False  # loaded but not running
    assert info.has("chan_pjsip") is False
    assert ari.asked == [
        ("GET", "/asterisk/info", {"only": "system"}),
        ("GET", "/asterisk/modules", None),
    ]


async def test_modules_ari_does_not_list_are_unknown() -> None:
    missing = AriHttpError("GET", "/asterisk/modules", 404, "Not Found")
    info, _ = await read({"system": {"version": "22.6.0"}}, missing)
    assert info.modules is None
    assert info.has("chan_websocket") is None
    assert info.release == (22, 6, 0)
    odd, _ = await read({"system": {"version": "22.6.0"}}, {"message": "not a list"})
    assert odd.modules is None
    empty, _ = await read({"system": {"version": "22.6.0"}}, [])
    assert empty.modules == frozenset()  # listed, and none: known to have none
    assert empty.has("chan_rtp") is False


async def test_an_ari_that_does_not_answer_fails() -> None:
    with pytest.raises(PbxUnavailable):
        await read({"system": {"version": "22.6.0"}}, PbxUnavailable("ARI unreachable"))


@pytest.mark.parametrize(
    "answer", [None, {}, {"system": None}, {"system": {}}, {"system": {"version": 22}}, []]
)
async def test_a_version_not_told(answer: Any) -> None:
    info, _ = await read(answer, [])
    assert info.version == ""
    assert info.release is None
