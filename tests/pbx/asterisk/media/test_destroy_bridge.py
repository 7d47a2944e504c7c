"""Deleting a bridge that is already gone, or being deleted concurrently, is not an error."""

from __future__ import annotations

from typing import Any

import pytest

from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.asterisk.media.legs import destroy_bridge

pytestmark = pytest.mark.unit


class StubAri:
    def __init__(self, status: int | None) -> None:
        self.status = status
        self.calls: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, **_: Any) -> None:
        self.calls.append((method, path))
        if self.status is not None:
            raise AriHttpError(method, path, self.status, "refused")


@pytest.mark.parametrize(("status", "deleted"), [(None, True), (404, False), (409, False)])
async def test_destroy_bridge_tolerates_gone_bridges(status: int | None, deleted: bool) -> None:
    ari = StubAri(status)
    assert await destroy_bridge(ari, "call-1-bridge") is deleted  # type: ignore[arg-type]
    assert ari.calls == [("DELETE", "/bridges/call-1-bridge")]


async def test_other_errors_still_raise() -> None:
    with pytest.raises(AriHttpError):
        await destroy_bridge(StubAri(500), "b")  # type: ignore[arg-type]
