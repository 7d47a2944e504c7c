"""The real service on the lab FreeSWITCH as a test drives it: REST with an API key, and
FreeSWITCH itself over the service's own Event Socket (``show channels``, ``uuid_getvar``).

``serve_on_lab`` starts it (what ``voicedock serve`` starts, from ``Settings`` whose ESL points
at the lab); the REST harness of ``tests/freeswitch_lab`` and the user-path suite's
``freeswitch`` backend both run on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from e2e.conftest import LiveService, start_app
from fakes.world import ACME, SUPPORT_ID
from pbx.freeswitch.live_service import SpeechFakes, freeswitch_settings, speech_fakes, until
from pipeline.fakes import FakeTts
from voicedock.api.api_keys import issue_api_key
from voicedock.config import Settings, TrunkSettings
from voicedock.pbx.freeswitch.esl.errors import EslCommandError
from voicedock.pbx.freeswitch.pbx import FreeswitchPbx
from voicedock_lab.freeswitch import LabFreeswitch


def lab_settings(lab: LabFreeswitch, database: Path, speech: str | None) -> Settings:
    """The test world on the lab FreeSWITCH: its Event Socket, its trunk (the sofia gateway
    "carrier"), its warm-transfer agents as internal targets; ``speech`` names the providers
    (None: the offline engines)."""
    settings = freeswitch_settings(
        None, database, speech, esl_port=lab.esl_port, esl_password=lab.esl_password
    )
    settings.policy.internal_targets = [
        *settings.policy.internal_targets,
        "busyagent",
        "warmaccept",
        "warmdecline",
        "warmhangup",
        "warmsayyes",
    ]
    settings.trunks = [TrunkSettings(name="carrier", endpoint=lab.settings.trunk_name)]
    # The stand-in LLMs the assistants name run on loopback, as a local model would.
    settings.egress.allowed_networks = ["127.0.0.1/32"]
    return settings


class ToneTts(FakeTts):
    """Each sentence becomes a 440 Hz tone, ``ms_per_char`` per character (loud enough to
    measure in what the party recorded)."""

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.texts.append(text)
        samples = self.sample_rate * self.ms_per_char * len(text) // 1000
        t = np.arange(samples) / self.sample_rate
        yield (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


@dataclass
class LabFreeswitchService(LiveService):
    """The running service on the lab FreeSWITCH, with the lab at hand."""

    lab: LabFreeswitch
    status_wait_s: ClassVar[float] = 10.0  # a real PBX, a busy CI machine

    @property
    def fs(self) -> FreeswitchPbx:
        assert isinstance(self.service.pbx, FreeswitchPbx)
        return self.service.pbx

    async def place(self, destination: str, **extra: Any) -> str:
        body = {"destination": destination, "assistant_id": SUPPORT_ID, **extra}
        status, reply = await self.post("/calls/outbound", body)
        assert status == 200, reply
        return str(reply["call_id"])

    # --- FreeSWITCH itself, over its Event Socket ---

    async def channels(self) -> set[str]:
        return {c.uuid for c in await self.fs.esl.show_channels()}

    async def getvar(self, channel: str, name: str) -> str:
        return (await self.fs.esl.api(f"uuid_getvar {channel} {name}")).strip()

    async def channel_of(self, call_id: str, within: float = 3.0) -> str:
        """The uuid of the FreeSWITCH channel carrying ``voicedock_call_id=<call_id>``.

        Polled: ``show channels`` reads FreeSWITCH's core database, which lags the channel's
        events (CHANNEL_ANSWER) by up to about half a second."""
        found: list[str] = []

        async def listed() -> bool:
            for channel in await self.channels():
                try:
                    value = await self.getvar(channel, "voicedock_call_id")
                except EslCommandError:
                    continue  # hung up between the listing and the question
                if value == call_id:
                    found.append(channel)
                    return True
            return False

        try:
            await until(listed, within)
        except TimeoutError:
            raise AssertionError(f"no FreeSWITCH channel has voicedock_call_id={call_id}") from None
        return found[0]


@dataclass
class LabService(LabFreeswitchService):
    """``LabFreeswitchService`` whose assistant speaks through ``SpeechFakes``."""

    speech: SpeechFakes


@asynccontextmanager
async def serve_on_lab(
    lab: LabFreeswitch, settings: Settings
) -> AsyncIterator[tuple[Any, Any, str]]:
    """The service built from ``settings`` (ESL to ``lab``), once its Event Socket is
    connected: (client, service, API key of ACME). Every leg is hung up when it stops."""
    client, service = await start_app(settings)
    try:
        assert isinstance(service.pbx, FreeswitchPbx)
        async with asyncio.timeout(10):
            await service.pbx.esl.wait_connected()
        key, _ = await issue_api_key(service.store, ACME)
        yield client, service, key
    finally:
        await client.close()
        # A failed test's legs must not spill into the next test.
        lab.api("hupall NORMAL_CLEARING")


@asynccontextmanager
async def running_lab_service(lab: LabFreeswitch, tmp_path: Path) -> AsyncIterator[LabService]:
    """The service on the lab FreeSWITCH (database in ``tmp_path``, speaking through
    ``SpeechFakes``) with an API key of ACME. On exit no leg of the test is left at FreeSWITCH."""
    async with speech_fakes() as (name, fakes):
        settings = lab_settings(lab, tmp_path / "fslab.db", name)
        async with serve_on_lab(lab, settings) as (client, service, key):
            running = LabService(client, service, key, lab, fakes)
            before = await running.channels()
            yield running
            # Every test leaves FreeSWITCH as it found it: no leg of ours is left behind.
            await until(lambda: _no_new_channels(running, before), within=10)


async def _no_new_channels(live: LabFreeswitchService, before: set[str]) -> bool:
    return not (await live.channels() - before)
