"""The running service the user-path suite talks to, once per PBX, behind one small interface.

A ``UserPathBackend`` is the real service (REST API → engine → runner → PBX adapter) plus what
a user's far side is: which destination answers, what a party heard, how to call in. The
examples of the documentation name destinations that are not parties of the test PBX; the
mapping below turns them into ones that answer (``DESTINATIONS``, ``TRANSFER_TARGETS``), and
is the only place where an example's request is changed (besides the placeholders).

* ``asterisk``: the service against the real lab Asterisk (``tests/e2e/conftest.py``
  ``serve``/``service_settings``); a party's ears are its MixMonitor recording.
* ``freeswitch``: the service against the real lab FreeSWITCH
  (``tests/freeswitch_lab_session.py``, started like ``tests/freeswitch_lab``); a party's
  ears are its ``record_session`` recording, ``<number>-<sip_call_id>.wav``.
* ``freeswitch-fake``: the service over the in-process fake FreeSWITCH
  (``tests/pbx/freeswitch/live_service.py``); a party's ears are the audio the fake queued on
  its channel. It needs no root and no build, so it runs wherever the unit tests do.

Both lab backends speak through the offline engines (Piper, faster-whisper): what a party
heard is transcribed from its recording.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from e2e.audio_helpers import SILENT_PARTY, read_finished_recording, read_new_recording
from e2e.conftest import serve, service_settings
from fakes.world import ACME_NUMBERS, SUPPORT_ID
from pbx.lab_calls import ANSWERS
from voicedock.config import TrunkSettings
from voicedock.service import Service

# The assistant's greeting in this suite: words Whisper gets right on an 8 kHz line.
GREETING = "Hello, this is the city library."
GREETING_WORDS = {"city", "library"}

# Example destination → the lab party that stands in for it. The examples' +31612345678 is a lab
# party, but one that plays hello-world the moment it answers and so talks over (barges in on)
# the greeting; the user who checks "the callee heard my greeting" needs a callee who listens.
DESTINATIONS = {"+31612345678": SILENT_PARTY}
# Example transfer destination → lab transfer target. "+31201234567" is nobody in the lab;
# "sales" answers a blind transfer but never accepts a *warm* one (it presses nothing): a warm
# transfer to it goes to warmaccept, which presses 1. Keys: (destination, mode).
TRANSFER_TARGETS = {
    ("+31201234567", "blind"): ANSWERS,
    ("+31201234567", "warm"): ANSWERS,
    ("sales", "warm"): "warmaccept",
}
INTERNAL_TARGETS = ["sales", "warmaccept"]


class WebhookReceiver:
    """Stands in for the examples' ``https://crm.example.com/...``: a loopback endpoint that
    keeps what it is sent (the lab has no DNS, and the SSRF guard allows loopback here)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_post("/voicedock", self._hook)
        self.server = TestServer(app, host="127.0.0.1", port=0)

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.Response(status=204)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/voicedock"))

    async def __aenter__(self) -> WebhookReceiver:
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()


@dataclass
class UserPathBackend:
    """One running service on one PBX, and the far side of its calls."""

    name: str
    client: Any  # aiohttp TestClient on the service's app
    service: Service
    key: str
    silent: str  # a destination that answers and says nothing (a live call to control)
    answers: str  # a destination that answers (and speaks a little)
    did: str  # one of our numbers, answered by the Support assistant
    webhooks: WebhookReceiver
    numbers: tuple[str, ...] = ACME_NUMBERS  # the organization's caller numbers
    assistant_id: str = SUPPORT_ID
    destinations: dict[str, str] = field(default_factory=lambda: dict(DESTINATIONS))
    transfer_targets: dict[tuple[str, str], str] = field(
        default_factory=lambda: dict(TRANSFER_TARGETS)
    )
    cache: dict[str, Any] = field(default_factory=dict)  # per module: a finished call, ...
    # Words the caller of ``call_in`` says once answered (the transcript holds them); empty:
    # a caller who says nothing.
    caller_words: frozenset[str] = frozenset()

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def destination(self, documented: str) -> str:
        return self.destinations.get(documented, documented)

    def transfer_target(self, documented: str, mode: str = "blind") -> str:
        return self.transfer_targets.get((documented, mode), documented)

    # ---- the far side (overridden per PBX) -----------------------------------------------

    def mark(self) -> Any:
        """Whatever ``heard`` needs to tell this call's far side from earlier ones."""
        return None

    async def heard(self, call_id: str, mark: Any) -> tuple[bytes, int]:
        """16-bit PCM the far side of ``call_id`` heard, and its rate (after the hang-up)."""
        raise NotImplementedError

    async def release_transferred(self, call_id: str) -> None:
        """Hang up the caller a transfer took away from voicedock (the test's cleanup)."""

    async def call_in(self) -> str:
        """A party calls ``did``; returns a reference for ``caller_heard``."""
        raise NotImplementedError

    async def caller_heard(self, ref: str) -> tuple[bytes, int]:
        raise NotImplementedError


@dataclass
class LabBackend(UserPathBackend):
    """A backend on a lab PBX. Calls whose far side is checked go to the silent party, which
    records what it hears; the new file matching ``heard_pattern`` since ``mark`` is this
    call's (tests run one call at a time per backend)."""

    lab: Any = None  # the lab PBX (LabAsterisk, LabFreeswitch)
    heard_pattern: str = ""

    def mark(self) -> Any:
        return set(Path(self.lab.recordings_dir).glob(self.heard_pattern))

    async def heard(self, call_id: str, mark: Any) -> tuple[bytes, int]:
        return await read_new_recording(Path(self.lab.recordings_dir), self.heard_pattern, mark)


@dataclass
class AsteriskBackend(LabBackend):
    # The silent party's recording is silent-<tag>-rx.wav, the tag being the far channel's
    # uniqueid (a transfer target records its own file beside it).
    heard_pattern: str = "silent-*-rx.wav"
    caller_words: frozenset[str] = frozenset({"hello", "world"})  # the lab caller's hello-world

    async def release_transferred(self, call_id: str) -> None:
        pbx: Any = self.service.pbx
        if call_id in {c.id for c in await pbx.ari.list_channels()}:
            await pbx.ari.hangup_channel(call_id)

    async def call_in(self) -> str:
        tag = uuid.uuid4().hex[:12]
        await asyncio.to_thread(self.lab.originate_inbound, self.did, tag=tag)
        return tag

    async def caller_heard(self, ref: str) -> tuple[bytes, int]:
        return await read_finished_recording(Path(self.lab.recordings_dir) / f"caller-{ref}-rx.wav")


def configure(settings: Any) -> Any:
    """What every backend's service shares: the greeting, transfer policy, lab targets."""
    settings.assistants[0].first_message = GREETING
    settings.policy.internal_targets = list(INTERNAL_TARGETS)
    settings.policy.allowed_countries = ["NL"]
    settings.egress.allow_loopback = True
    return settings


@asynccontextmanager
async def asterisk_backend(
    lab: Any,
    directory: Path,
    *,
    name: str = "asterisk",
    media_transport: str = "auto",
    configure_more: Callable[[Any], None] | None = None,
) -> AsyncIterator[AsteriskBackend]:
    """The service on a lab Asterisk (22 or 16); ``media_transport`` forces how the calls'
    audio travels (``auto``: what the lab's Asterisk offers first); ``configure_more``
    changes the settings further."""
    database = directory / "user-paths.db"
    settings = configure(service_settings(lab, database, "ari", media_transport))
    if configure_more is not None:
        configure_more(settings)
    running = await serve(settings)
    try:
        async with WebhookReceiver() as receiver:
            yield AsteriskBackend(
                name,
                running.client,
                running.service,
                running.key,
                silent=SILENT_PARTY,
                answers=ANSWERS,
                did=ACME_NUMBERS[0],
                webhooks=receiver,
                lab=lab,
            )
    finally:
        await running.client.close()


@dataclass
class FreeswitchFakeBackend(UserPathBackend):
    far_end: Any = None  # freeswitch.live_service.FreeswitchFarEnd

    async def heard(self, call_id: str, mark: Any) -> tuple[bytes, int]:
        return self.far_end.heard(self.far_end.channel_of(call_id))  # type: ignore[no-any-return]

    async def release_transferred(self, call_id: str) -> None:
        self.far_end.hang_up(self.far_end.channel_of(call_id))

    async def call_in(self) -> str:
        return str(self.far_end.call_in(self.did, caller=ANSWERS))

    async def caller_heard(self, ref: str) -> tuple[bytes, int]:
        return self.far_end.heard(ref)  # type: ignore[no-any-return]


def configure_freeswitch(settings: Any) -> None:
    configure(settings)
    settings.trunks = [TrunkSettings(name="carrier", endpoint="carrier")]


@asynccontextmanager
async def freeswitch_fake_backend(directory: Path) -> AsyncIterator[FreeswitchFakeBackend]:
    """The service over the in-process fake FreeSWITCH (``freeswitch.live_service``), speaking
    through the offline engines so that what the party heard can be transcribed.

    Every number answers in the fake unless told otherwise; the parties say nothing.
    """
    from pbx.freeswitch.live_service import running_freeswitch_service

    async with running_freeswitch_service(
        directory, configure_freeswitch, fake_speech=False
    ) as running:
        # The warm agent: "sales" (an internal target, reached through the dialplan over
        # mod_loopback) and the E.164 example take a warm transfer by pressing 1.
        running.far_end.fake.agent_presses.update(
            {target: "1" for (target, mode) in TRANSFER_TARGETS if mode == "warm"}
        )
        async with WebhookReceiver() as receiver:
            yield FreeswitchFakeBackend(
                "freeswitch-fake",
                running.client,
                running.service,
                running.key,
                silent=SILENT_PARTY,
                answers=ANSWERS,
                did=ACME_NUMBERS[0],
                webhooks=receiver,
                transfer_targets={},
                far_end=running.far_end,
            )


@dataclass
class FreeswitchLabBackend(LabBackend):
    """The service on the lab FreeSWITCH (``dialplan/lab/freeswitch.xml``): its parties record
    what they hear as ``<number>-<sip_call_id>.wav``, the inbound caller as
    ``caller-<uuid>.wav``."""

    heard_pattern: str = f"{SILENT_PARTY}-*.wav"
    running: Any = None  # freeswitch_lab.lab_service.LabFreeswitchService
    caller_words: frozenset[str] = frozenset({"appointment", "monday"})  # lab_caller_speaks

    async def release_transferred(self, call_id: str) -> None:
        try:
            channel = await self.running.channel_of(call_id, within=1.0)
        except AssertionError:
            return  # already gone
        await self.running.fs.esl.api(f"uuid_kill {channel}")

    async def call_in(self) -> str:
        return str(await asyncio.to_thread(self.lab.originate_inbound, self.did, speaks=True))

    async def caller_heard(self, ref: str) -> tuple[bytes, int]:
        return await read_finished_recording(self.lab.recording_of_caller(ref))


@asynccontextmanager
async def freeswitch_lab_backend(lab: Any, directory: Path) -> AsyncIterator[FreeswitchLabBackend]:
    """The service on the real lab FreeSWITCH, speaking through the offline engines."""
    from freeswitch_lab.lab_service import LabFreeswitchService, lab_settings, serve_on_lab

    settings = configure(lab_settings(lab, directory / "user-paths.db", None))
    async with serve_on_lab(lab, settings) as (client, service, key), WebhookReceiver() as hooks:
        yield FreeswitchLabBackend(
            "freeswitch",
            client,
            service,
            key,
            silent=SILENT_PARTY,
            answers=ANSWERS,
            did=ACME_NUMBERS[0],
            webhooks=hooks,
            lab=lab,
            running=LabFreeswitchService(client, service, key, lab),
        )
