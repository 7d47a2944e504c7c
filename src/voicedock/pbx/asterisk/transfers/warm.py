"""The warm transfer on Asterisk: hold, dial the agent, brief, decide, swap or return.

See ``asterisk.transfers.native`` for the whole picture. One ``WarmTransfer`` per attempt; the ARI
events it waits for (the agent's StasisStart, channels going away) are handed to it by
``AsteriskTransfers``. What the agent hears and what their spoken answer means come from
above, as a ``pbx.base.WarmDialogue`` (``calls/transfers``); without one the briefing is a
beep and only a digit decides.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import math
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from voicedock.aio import Coro, Supervisor, first_of
from voicedock.domain.ids import mask_call_id
from voicedock.errors import PbxError, ProviderError
from voicedock.pbx.adapter import Spawn
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.asterisk.media.legs import (
    add_channel,
    create_bridge,
    destroy_bridge,
    external_media,
    leg_id,
    remove_channel,
)
from voicedock.pbx.asterisk.media.transports import MediaTransports
from voicedock.pbx.asterisk.transfers.context import DialplanTarget, TransferSettings
from voicedock.pbx.base import (
    BRIEFING_KEY,
    PbxEvent,
    PbxEventKind,
    PbxEventSink,
    Speech,
    TransferTarget,
    WarmDialogue,
)
from voicedock.pbx.legs import CallLegs
from voicedock.pbx.warm_answer import heard_decision

if TYPE_CHECKING:
    from voicedock.media.call_media import CallMedia

log = logging.getLogger("voicedock.pbx.asterisk.pbx")

WARM_ARG = "warm"
ACCEPT_DIGIT = "1"
DECLINE_DIGIT = "2"
_SYNTHESIS_TIMEOUT = 15.0


class TransferOwner(Protocol):
    """What an attempt uses of the transfers that own it (``transfer.AsteriskTransfers``): the
    ARI client, the settings, the dialogue, and where events and background work go."""

    @property
    def ari(self) -> AriClient: ...

    @property
    def settings(self) -> TransferSettings: ...

    @property
    def dialogue(self) -> WarmDialogue | None: ...

    @property
    def emit(self) -> PbxEventSink: ...

    @property
    def spawn(self) -> Spawn: ...

    @property
    def release_media(self) -> Callable[[str], Coro[None]]: ...

    @property
    def transports(self) -> MediaTransports: ...

    def watch_stasis(self, channel_id: str) -> asyncio.Event:
        """Set when the channel enters our application."""
        ...

    def unwatch(self, *channel_ids: str) -> None: ...

    def finished(self, call_id: str) -> None:
        """The attempt of this call is over (its outcome reported)."""
        ...


class WarmTransfer:
    """One warm transfer attempt: hold, dial, brief, decide, swap or return."""

    def __init__(
        self,
        owner: TransferOwner,
        legs: CallLegs,
        target: TransferTarget,
        where: DialplanTarget,
    ) -> None:
        self._owner = owner
        self._ari = owner.ari
        self._legs = legs
        self._target = target
        self._where = where
        call_id = legs.call_id
        self.agent = leg_id(call_id, "agent")
        self.agent_media = leg_id(call_id, "agentmedia")
        self.agent_bridge = leg_id(call_id, "warm")
        self._call_bridge = leg_id(call_id, "bridge")
        self._hold_playback = leg_id(call_id, "hold")
        self._agent_gone = asyncio.Event()
        self._caller_gone = asyncio.Event()
        self._digits: asyncio.Queue[str] | None = None  # while the agent decides

    def digit_pressed(self, channel_id: str, digit: str) -> None:
        """The agent's DTMF as ARI reports it on the agent leg; the media leg's DTMF_END is
        the other path, and whichever comes first decides."""
        if channel_id == self.agent and self._digits is not None:
            self._digits.put_nowait(digit)

    def channel_gone(self, channel_id: str) -> None:
        if channel_id == self.agent:
            self._agent_gone.set()
        elif channel_id == self._legs.main_channel:
            self._caller_gone.set()

    async def run(self) -> None:
        call_id = self._legs.call_id
        outcome = "error"
        try:
            outcome = await self._attempt()
        except Exception:  # whatever broke, the caller must not stay on hold
            log.exception("call %s: warm transfer failed", mask_call_id(call_id))
        finally:
            self._owner.unwatch(self.agent, self.agent_media)
        if outcome == "accepted":
            await self._owner.emit(
                PbxEvent(call_id, PbxEventKind.TRANSFERRED, detail=self._target.destination)
            )
            self._owner.spawn(self._end_together())
            return
        self._owner.finished(call_id)
        await self._return_caller()
        if not self._caller_gone.is_set():
            await self._owner.emit(
                PbxEvent(call_id, PbxEventKind.TRANSFER_FAILED, detail=f"warm-{outcome}")
            )

    async def _attempt(self) -> str:
        caller = self._legs.main_channel
        if self._call_bridge in self._legs.bridges:
            await remove_channel(self._ari, self._call_bridge, caller)
        await self._hold(caller)
        dialogue = self._owner.dialogue
        if dialogue is None:  # no voice: a beep cues the agent to press 1 or 2
            return await self._dial_and_brief(caller, None)
        # Synthesized while the agent's phone rings, so the briefing starts at answer.
        text = dialogue.briefing_text(
            self._target.extra.get(BRIEFING_KEY),
            voice_decision=self._owner.settings.voice_decision,
        )
        async with Supervisor("warm transfer", log) as tasks:
            speech = tasks.spawn_result(_synthesized(dialogue.synthesize, text))
            return await self._dial_and_brief(caller, speech)

    async def _dial_and_brief(
        self, caller: str, speech: asyncio.Future[Speech | None] | None
    ) -> str:
        settings = self._owner.settings
        answered = self._owner.watch_stasis(self.agent)
        variables = {"VOICEDOCK_WARM": "1", **self._where.variables}
        await self._ari.originate(
            endpoint=f"Local/{self._where.extension}@{settings.context}/n",
            app_args=f"{WARM_ARG},{self._legs.call_id}",
            caller_id="voicedock",
            channel_id=self.agent,
            timeout_seconds=settings.answer_timeout,
            variables=variables,
        )
        first = await first_of(
            answered.wait(),
            self._agent_gone.wait(),
            self._caller_gone.wait(),
            within=settings.answer_timeout + 5,
        )
        if first is None or first[0] != 0:
            return "caller-gone" if first is not None and first[0] == 2 else "no-answer"
        async with self._agent_media() as media:
            digit = await self._brief_and_decide(media, speech)
            if self._caller_gone.is_set():
                return "caller-gone"
            if digit is None and self._agent_gone.is_set():
                return "agent-hung-up"
            if digit != ACCEPT_DIGIT:
                return "declined" if digit == DECLINE_DIGIT else "no-decision"
            # The caller joins while the agent's media leg is still bridged (one mixer
            # throughout, see _agent_media); the rest of the briefing is dropped.
            await media.flush()
            await self._swap(caller)
        return "accepted"

    @contextlib.asynccontextmanager
    async def _agent_media(self) -> AsyncIterator[CallMedia]:
        settings = self._owner.settings
        # The agent's leg travels as the call's do (RTP, AudioSocket); a websocket one is
        # always voicedock's connection to Asterisk (no acceptor waits for it).
        leg = await self._owner.transports.prepare(
            call_id=self._legs.call_id,
            leg=self.agent_media,
            media_format=settings.media_format,
            server_websocket=True,
        )
        try:
            # "video_sfu" only forces the softmix technology (the one bridge technology with
            # SFU support): softmix sends each party one continuous mixed stream through the
            # swap. A two-party simple_bridge switches the agent's stream from our media leg to
            # the caller instead, and in the lab the agent then heard silence in about half of
            # the runs.
            await create_bridge(self._ari, self.agent_bridge, "mixing,video_sfu")
            in_stasis = self._owner.watch_stasis(self.agent_media)
            channel_vars = await external_media(
                self._ari,
                app=settings.app,
                media_format=leg.format,
                params=leg.params(),
                channel_id=self.agent_media,
                data=leg.data(self._legs.call_id),
                variables=leg.variables(),
            )
            async with await leg.connect(channel_vars, self._agent_gone) as media:
                async with asyncio.timeout(5):
                    await in_stasis.wait()
                await add_channel(self._ari, self.agent_bridge, self.agent_media)
                await add_channel(self._ari, self.agent_bridge, self.agent)
                yield media
        finally:
            leg.cancel()
            with contextlib.suppress(PbxError):
                await self._ari.hangup_channel(self.agent_media)

    async def _brief_and_decide(
        self, media: CallMedia, speech: asyncio.Future[Speech | None] | None
    ) -> str | None:
        """Speak the briefing while listening for the agent's digit; ``None``: no decision."""
        settings = self._owner.settings
        dialogue = self._owner.dialogue
        digit: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        ari_digits = self._digits = asyncio.Queue()

        def decide(pressed: str) -> None:
            if pressed in (ACCEPT_DIGIT, DECLINE_DIGIT) and not digit.done():
                digit.set_result(pressed)

        # Both paths report the same digit (ARI on the agent leg, DTMF_END on the media leg);
        # the first one decides.
        async def from_media() -> None:
            async for pressed in media.dtmf():
                decide(pressed)

        async def from_ari() -> None:
            while True:
                decide(await ari_digits.get())

        async def from_voice() -> None:
            # "yes" / "no" spoken by the agent count like 1 / 2. A broken recognizer only
            # costs the voice path: DTMF still decides.
            assert dialogue is not None
            said = await heard_decision(
                dialogue, media.inbound_audio(), media.format, self._legs.call_id, log
            )
            if said is not None:
                decide(ACCEPT_DIGIT if said == "accept" else DECLINE_DIGIT)

        async def brief() -> None:
            from voicedock.media.sink import MediaSink

            voice: Speech | None = None
            if speech is not None:
                try:
                    async with asyncio.timeout(_SYNTHESIS_TIMEOUT):
                        voice = await asyncio.shield(speech)
                except (ProviderError, TimeoutError) as exc:
                    log.warning("warm transfer briefing not synthesized: %s", type(exc).__name__)
            # No voice for the briefing: a beep cues the agent to press 1 or 2.
            pcm, rate = voice or beep()
            await (await MediaSink(media).play(pcm, rate)).played()

        async with asyncio.TaskGroup() as tg:
            listeners = [tg.create_task(from_media()), tg.create_task(from_ari())]
            if settings.voice_decision and dialogue is not None:
                listeners.append(tg.create_task(from_voice()))
            speaker = tg.create_task(brief())
            gone = tg.create_task(first_of(self._agent_gone.wait(), self._caller_gone.wait()))
            try:
                # The decision window starts when the briefing ends (or a digit came first).
                first: list[Awaitable[object]] = [digit, speaker, gone]
                await first_of(*first)
                if not digit.done() and not gone.done():
                    await first_of(digit, gone, within=settings.decision_timeout)
            finally:
                self._digits = None
                for task in (*listeners, speaker, gone):
                    task.cancel()
        if gone.done() and not gone.cancelled() and not digit.done():
            return None
        return digit.result() if digit.done() else None

    async def _swap(self, caller: str) -> None:
        """Caller into the agent's bridge; voicedock's own legs and bridges go."""
        await self._unhold(caller)
        await add_channel(self._ari, self.agent_bridge, caller)
        self._legs.transferred = True  # not ours to hang up: ``_end_together`` watches it
        await self._owner.release_media(self._legs.call_id)

    async def _end_together(self) -> None:
        """After the swap, whoever hangs up first ends the other; then the bridge goes.

        The agent leg and its bridge stay out of the call's registry entry on purpose: the
        live conversation releasing its media must not touch them.
        """
        try:
            await first_of(self._agent_gone.wait(), self._caller_gone.wait())
            for channel in (self.agent, self._legs.main_channel):
                with contextlib.suppress(PbxError):
                    await self._ari.hangup_channel(channel)
            with contextlib.suppress(PbxError):
                await destroy_bridge(self._ari, self.agent_bridge)
        finally:
            self._owner.finished(self._legs.call_id)

    async def _return_caller(self) -> None:
        """Undo everything but the call: agent legs gone, caller back in the call's bridge."""
        for channel in (self.agent_media, self.agent):
            with contextlib.suppress(PbxError):
                await self._ari.hangup_channel(channel)
        with contextlib.suppress(PbxError):
            await destroy_bridge(self._ari, self.agent_bridge)
        if self._caller_gone.is_set() or self._legs.ended:
            return
        caller = self._legs.main_channel
        with contextlib.suppress(PbxError):
            await self._unhold(caller)
            if self._call_bridge in self._legs.bridges:
                await add_channel(self._ari, self._call_bridge, caller)

    async def _hold(self, channel: str) -> None:
        """Hold audio for the caller: ``moh:<class>`` or any ARI media URI (``tone:ring``).

        MOH needs configured classes: without any (the lab), a started-then-stopped MOH left
        the caller's audio muted toward the agent, so the default is the ringback tone.
        """
        hold = self._owner.settings.hold_media
        path = f"/channels/{quote(channel, safe='')}"
        if hold.startswith("moh:"):
            await self._ari.request("POST", f"{path}/moh", params={"mohClass": hold[4:]})
        elif hold:
            params = {"media": hold, "playbackId": self._hold_playback}
            await self._ari.request("POST", f"{path}/play", params=params)

    async def _unhold(self, channel: str) -> None:
        hold = self._owner.settings.hold_media
        if hold.startswith("moh:"):
            await self._ari.request("DELETE", f"/channels/{quote(channel, safe='')}/moh")
        elif hold:
            with contextlib.suppress(AriHttpError):  # 404: the playback already ended
                await self._ari.request("DELETE", f"/playbacks/{self._hold_playback}")


def beep(seconds: float = 0.4, hz: float = 880.0, rate: int = 8000) -> Speech:
    """A plain tone as 16-bit PCM: the briefing when no voice can be synthesized."""
    count = int(seconds * rate)
    samples = (round(6000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(count))
    pcm = array.array("h", samples)
    if sys.byteorder == "big":
        pcm.byteswap()  # the media stack takes little-endian PCM
    return pcm.tobytes(), rate


async def _synthesized(synthesize: Callable[[str], Awaitable[Speech]], text: str) -> Speech | None:
    """The briefing's speech, ``None`` when the provider failed (a beep then; logged without
    the text: briefings name the caller's request)."""
    try:
        return await synthesize(text)
    except ProviderError as exc:
        log.warning("warm transfer briefing not synthesized: %s", type(exc).__name__)
        return None
