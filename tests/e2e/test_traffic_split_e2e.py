"""A 50/50 split between two versions of an assistant on real inbound calls: the number's
assistant, saved and edited through REST, its inbound calls split between versions 2 and 3
(``PATCH /phone-numbers/{id}`` with ``traffic_split``); the lab carrier calls the number from
ten callers twice each (20 calls, five at a time): both versions answer, each caller is
answered by the same version both times, the one the split gives its number, and usage counts
the calls per version."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import LiveService, serve, service_settings
from e2e.test_calls_e2e import TERMINAL, until, wait_status
from fakes.world import ACME_NUMBERS, number_id
from voicedock.domain.traffic_split import TrafficShare, version_for
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

CALLERS = [f"+3161234{n:04d}" for n in range(5500, 5510)]
AT_ONCE = 5


async def _json(live: LiveService, resp: Any, status: int = 200) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json()


async def _versioned_assistant(live: LiveService) -> str:
    """An assistant saved with one greeting and changed twice: versions 1, 2 and 3."""
    h = live.auth()
    body = {"name": "Desk", "first_message": "Version one."}
    created = await _json(live, await live.client.post("/assistants", json=body, headers=h), 201)
    for greeting in ("Version two.", "Version three."):
        path = f"/assistants/{created['id']}"
        await _json(
            live, await live.client.patch(path, json={"first_message": greeting}, headers=h)
        )
    return str(created["id"])


async def _call_in(lab: LabAsterisk, live: LiveService, caller: str, seen: set[str]) -> int:
    """The lab carrier calls the number from ``caller``: the version the call records once
    answered; the caller hangs up and the call ends."""
    channel = await asyncio.to_thread(lab.originate_inbound, ACME_NUMBERS[0], caller=caller)
    listed: list[dict[str, Any]] = []  # the caller's calls, as last listed
    found: list[dict[str, Any]] = []

    async def answered() -> bool:
        resp = await live.client.get("/calls?limit=100", headers=live.auth())
        listed[:] = [c for c in (await resp.json())["calls"] if c["caller_phone"] == caller]
        found[:] = [c for c in listed if c["status"] == "in-progress" and c["id"] not in seen]
        return bool(found)

    try:
        await until(answered, 20)
    except TimeoutError:  # what the calls list said of this caller, to tell why
        mine = [(c["id"], c["status"], c.get("end_reason")) for c in listed]
        raise AssertionError(f"{caller} not answered in 20 s; its calls: {mine}") from None
    call = found[0]
    seen.add(call["id"])
    await live.pbx.ari.hangup_channel(channel)
    ended = await wait_status(live, call["id"], TERMINAL, within=15)
    return int(ended["assistant_version"])


async def test_a_number_s_calls_are_split_between_versions_by_caller(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    settings = service_settings(lab, tmp_path / "split.db", "ari")
    for number in settings.numbers:
        number.max_concurrent_calls = AT_ONCE * 2
    live = await serve(settings)
    try:
        aid = await _versioned_assistant(live)
        split = [{"version": 2, "weight": 50}, {"version": 3, "weight": 50}]
        body = {"assistant_id": aid, "traffic_split": split}
        path = f"/phone-numbers/{number_id(ACME_NUMBERS[0])}"
        await _json(live, await live.client.patch(path, json=body, headers=live.auth()))

        seen: set[str] = set()
        answered: dict[str, list[int]] = {caller: [] for caller in CALLERS}
        for _ in range(2):
            for start in range(0, len(CALLERS), AT_ONCE):
                batch = CALLERS[start : start + AT_ONCE]
                versions = await asyncio.gather(*(_call_in(lab, live, c, seen) for c in batch))
                for caller, version in zip(batch, versions, strict=True):
                    answered[caller].append(version)

        shares = [TrafficShare(version=2, weight=50), TrafficShare(version=3, weight=50)]
        for caller, versions in answered.items():
            assert versions == [version_for(shares, aid, caller)] * 2, (caller, versions)
        assert {v for versions in answered.values() for v in versions} == {2, 3}
        usage = await _json(
            live,
            await live.client.get("/usage?group_by=assistant_version", headers=live.auth()),
        )
        counted = {g["key"]: g["calls"] for g in usage["groups"]}
        assert sum(counted.values()) == 20
        assert set(counted) == {f"{aid}@2", f"{aid}@3"}
    finally:
        await live.client.close()
