"""The real app whose calls run over a real ``MediaSession`` (``MediaFakePbx`` + the in-process
chan_websocket endpoint ``FakeAsterisk``), the caller's words scripted: the node's STT and TTS
are fakes (``pipeline.fakes``), the STT hearing each caller turn as the next of ``stt.texts``.
A test places calls through REST (``POST /calls/outbound``), answers them as the PBX would,
lets the caller speak turn by turn and reads what a user reads (``GET /calls/{id}``).

    async with spoken_calls(settings) as app:
        call_id = await app.answered({"assistant_id": ...})
        await app.caller_says(call_id, "I would like to book.")
        call = await app.ended(call_id)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from e2e.conftest import start_app
from fakes.pbx import MediaFakePbx
from fakes.world import ACME, DESTINATION
from media.fake_asterisk import FakeAsterisk
from pipeline.fakes import FakeStt, FakeTts
from pipeline.synth import silence, voiced
from voicedock.api.api_keys import issue_api_key
from voicedock.config import Settings
from voicedock.domain.records import KeyScope
from voicedock.media.codecs import ulaw_encode
from voicedock.pipeline.providers.registry import stt_registry, tts_registry
from voicedock.service import Service

SPEECH = "spoken-calls-test"  # the STT and TTS engine name: the operator's, or a section's
FRAME = 160  # 20 ms of µ-law at 8 kHz


@dataclass
class SpokenCalls:
    client: TestClient[Any, Any]
    service: Service
    pbx: MediaFakePbx
    fake: FakeAsterisk
    key: str
    stt: FakeStt

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def send(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        resp = await self.client.request(method, path, json=body, headers=self.auth())
        return resp.status, await resp.json() if resp.status != 204 else None

    async def answered(self, body: dict[str, Any]) -> str:
        """A call placed with ``body`` and answered, its media open."""
        status, placed = await self.send(
            "POST", "/calls/outbound", {"destination": DESTINATION, **body}
        )
        assert status == 200, placed
        call_id = str(placed["call_id"])
        await self.pbx.answer(call_id)
        async with asyncio.timeout(5):
            while not self.fake.channels:
                await asyncio.sleep(0.005)
        return call_id

    async def caller_says(self, text: str) -> None:
        """One caller turn the STT hears as ``text``, once what was said before is played;
        returns when it was transcribed."""
        channel = self.fake.channel()
        with contextlib.suppress(TimeoutError):  # the greeting or the last reply, played
            async with asyncio.timeout(1):
                while not channel.played:
                    await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)
        heard = len(self.stt.calls)
        self.stt.texts.append(text)
        wire = ulaw_encode(voiced(600) + silence(600))
        for start in range(0, len(wire) - FRAME + 1, FRAME):
            await channel.ws.send_bytes(wire[start : start + FRAME])
            await asyncio.sleep(0.001)
        async with asyncio.timeout(5):
            while len(self.stt.calls) == heard:
                await asyncio.sleep(0.01)

    async def ended(self, call_id: str) -> dict[str, Any]:
        """The call ended by ``end-call``, as ``GET /calls/{id}`` shows it then."""
        status, body = await self.send("POST", f"/calls/{call_id}/control", {"type": "end-call"})
        assert status == 200, body
        async with asyncio.timeout(10):
            while True:
                status, call = await self.send("GET", f"/calls/{call_id}")
                assert status == 200, call
                if call["status"] == "ended":
                    return dict(call)
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def spoken_calls(settings: Settings) -> AsyncIterator[SpokenCalls]:
    """The app on ``settings`` with the ``SPEECH`` engines as the operator's STT and TTS, and
    an admin key of ACME's."""
    stt = FakeStt()
    stt_registry.register(SPEECH, lambda _config, _e: stt)
    tts_registry.register(SPEECH, lambda _config, _e: FakeTts(8000, ms_per_char=1))
    settings.speech.stt = settings.speech.tts = SPEECH
    try:
        async with FakeAsterisk(send_audio=False) as fake:
            pbx = MediaFakePbx(fake)
            client, service = await start_app(settings, pbx)
            try:
                key, _ = await issue_api_key(service.store, ACME, scope=KeyScope.ADMIN)
                yield SpokenCalls(client, service, pbx, fake, key, stt)
            finally:
                await client.close()
    finally:
        stt_registry._factories.pop(SPEECH, None)  # type: ignore[attr-defined]
        tts_registry._factories.pop(SPEECH, None)  # type: ignore[attr-defined]
