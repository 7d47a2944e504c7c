"""The real service over the in-process fake FreeSWITCH, driven the way a user drives it.

``running_freeswitch_service`` starts what ``voicedock serve`` starts (``Service`` built from
``Settings`` with ``pbx.kind = "freeswitch"``, so ``service.make_pbx`` builds the adapter, and
``create_app`` serving it on 127.0.0.1 port 0) against a ``FakeFreeswitch`` speaking the real
Event Socket wire. A test then talks REST with an API key (``UserPathService``) and looks at the
far end (``FreeswitchFarEnd``): what FreeSWITCH was asked to do, and the party's side of the
call (answer, hang up, speak, call in).

Both classes name things by *call id* (what the user sees); the far end finds the channel the
way FreeSWITCH would: by the ``voicedock_call_id`` variable the originate put on it, or by the
inbound channel it created. A suite parametrized over both PBXs needs an Asterisk far end with
the same methods. Use it as ``async with running_freeswitch_service(tmp_path) as live`` (see
``test_user_paths.py`` for the fixture).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from e2e.conftest import LiveService, start_app
from fakes.world import ACME, make_settings
from pbx.freeswitch.fake_freeswitch import FakeFreeswitch
from pipeline.fakes import FakeLlm, FakeStt, FakeTts
from voicedock.api.api_keys import issue_api_key
from voicedock.config import FreeswitchSettings, PbxSettings, Settings
from voicedock.pbx.freeswitch.pbx import FreeswitchPbx
from voicedock.pipeline.providers.registry import llm_registry, stt_registry, tts_registry

ESL_PASSWORD = "user-path-esl-secret"
TERMINAL = ("ended", "failed")


async def until(check: Callable[[], Awaitable[bool] | bool], within: float = 5.0) -> None:
    """Poll ``check`` (sync or async) until it is true; ``TimeoutError`` after ``within``."""
    async with asyncio.timeout(within):
        while True:
            result = check()
            if await result if isinstance(result, Awaitable) else result:
                return
            await asyncio.sleep(0.02)


@dataclass
class SpeechFakes:
    """The assistant's providers during the test (no models): scripted STT, echo LLM, a TTS
    that records what the assistant said."""

    stt: FakeStt = field(default_factory=FakeStt)
    llm: FakeLlm = field(default_factory=FakeLlm)
    tts: FakeTts = field(default_factory=lambda: FakeTts(8000, ms_per_char=5))


class FreeswitchFarEnd:
    """The PBX side of the user's calls: what FreeSWITCH received and the called party."""

    def __init__(self, fake: FakeFreeswitch) -> None:
        self.fake = fake

    # --- what voicedock asked FreeSWITCH to do ---

    @property
    def commands(self) -> list[str]:
        return self.fake.commands

    def originate_of(self, call_id: str) -> Mapping[str, str]:
        """The ``{...}`` variables of the originate that placed ``call_id``."""
        for variables in self.fake.originates:
            if variables.get("voicedock_call_id") == call_id:
                return variables
        raise AssertionError(f"FreeSWITCH received no originate for {call_id}")

    def channel_of(self, call_id: str) -> str:
        """The channel uuid of the call (outbound: the originate's ``origination_uuid``)."""
        return self.originate_of(call_id)["origination_uuid"]

    def killed(self, channel_uuid: str) -> bool:
        return any(c.startswith(f"api uuid_kill {channel_uuid} ") for c in self.commands)

    def exists(self, channel_uuid: str) -> bool:
        return channel_uuid in self.fake.channels

    # --- the party ---

    def will_ring(self, number: str) -> None:
        """Calls to ``number`` ring until ``answer`` (instead of answering at once)."""
        self.fake.ringing.add(number)

    async def answer(self, call_id: str, within: float = 5.0) -> None:
        channel = self.channel_of(call_id)
        await until(lambda: self.fake.rings(channel), within)
        self.fake.answer(channel)

    def hang_up(self, channel_uuid: str) -> None:
        self.fake.remote_hangup(channel_uuid)

    async def speak(self, channel_uuid: str, pcm: bytes, within: float = 5.0) -> None:
        """Send 16-bit PCM from the party once voicedock's audio stream is attached."""
        await until(lambda: channel_uuid in self.fake.streams_by_uuid, within)
        self.fake.streams_by_uuid[channel_uuid].send_audio(pcm)

    def heard(self, channel_uuid: str) -> tuple[bytes, int]:
        """16-bit PCM of everything voicedock played to the channel, and its sample rate."""
        streams = [s for s in self.fake.audio_streams if s.channel_uuid == channel_uuid]
        rate = streams[-1].sample_rate if streams else 8000
        return self.fake.played_audio(channel_uuid), rate

    def call_in(self, did: str, caller: str) -> str:
        """``caller`` calls ``did``; the dialplan parks it. Returns the channel uuid."""
        return self.fake.inbound_call(did, caller=caller)


@dataclass
class UserPathService(LiveService):
    """The running service as a user sees it (REST with an API key), and the far end."""

    far_end: FreeswitchFarEnd
    speech: SpeechFakes | None  # None: the settings' own (offline) speech engines

    @property
    def pbx(self) -> FreeswitchPbx:  # type: ignore[override]
        assert isinstance(self.service.pbx, FreeswitchPbx)
        return self.service.pbx


def freeswitch_settings(
    fake: FakeFreeswitch | None,
    database: Path,
    speech: str | None,
    *,
    esl_port: int = 0,
    esl_password: str = ESL_PASSWORD,
) -> Settings:
    """The test world (``fakes.world``) on FreeSWITCH: ESL to the fake (or to ``esl_port``, the
    lab FreeSWITCH's), media on port 0; ``speech`` names the assistant's providers (None: the
    world's offline engines)."""
    settings = make_settings(f"sqlite:///{database}")
    port = fake.port if fake is not None else esl_port
    settings.pbx = PbxSettings(
        kind="freeswitch",
        freeswitch=FreeswitchSettings(
            esl_host="127.0.0.1", esl_port=port, esl_password=esl_password, media_port=0
        ),
    )
    if speech is not None:
        settings.speech.stt = settings.speech.llm = settings.speech.tts = speech
    return settings


@asynccontextmanager
async def speech_fakes() -> AsyncIterator[tuple[str, SpeechFakes]]:
    """Register ``SpeechFakes`` under a fresh provider name for the duration."""
    name, fakes = f"user-path-{uuid.uuid4().hex[:8]}", SpeechFakes()
    stt_registry.register(name, lambda _c, _e: fakes.stt)
    llm_registry.register(name, lambda _c, _e: fakes.llm)
    tts_registry.register(name, lambda _c, _e: fakes.tts)
    try:
        yield name, fakes
    finally:
        for registry in (stt_registry, llm_registry, tts_registry):
            registry._factories.pop(name, None)  # type: ignore[attr-defined]


@asynccontextmanager
async def running_freeswitch_service(
    tmp_path: Path,
    configure: Callable[[Settings], None] | None = None,
    *,
    fake_speech: bool = True,
) -> AsyncIterator[UserPathService]:
    """The fake FreeSWITCH, then the service built from settings (``configure`` may change
    them first), serving REST on 127.0.0.1 port 0 with an API key of organization ACME.

    ``fake_speech``: the assistant speaks through ``SpeechFakes``; False: through the
    settings' own offline engines (Piper, Whisper), for tests that listen to what was said."""
    async with FakeFreeswitch(password=ESL_PASSWORD) as fake, speech_fakes() as (name, fakes):
        database = tmp_path / "user-paths.db"
        settings = freeswitch_settings(fake, database, name if fake_speech else None)
        if configure is not None:
            configure(settings)
        client, service = await start_app(settings)  # make_pbx: pbx.kind = "freeswitch"
        try:
            async with asyncio.timeout(5):
                await service.pbx.esl.wait_connected()  # type: ignore[attr-defined]
            key, _ = await issue_api_key(service.store, ACME)
            speech = fakes if fake_speech else None
            yield UserPathService(client, service, key, FreeswitchFarEnd(fake), speech)
        finally:
            await client.close()
