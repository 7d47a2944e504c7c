"""The caller's side of a live call's media, to the dialogue: their audio and their keys.

Each caller frame (µ-law, A-law or slin* in the session's format) is decoded once: the samples
go to the call's taps (its recording and live listeners, ``taps.py``), then, resampled to the
dialogue's rate (``CallerAudio``), to the voicemail screening while its detector listens
(``screening.py``), or to a phone menu's navigation until a person picks up
(``phone_menu.py``), and otherwise to the dialogue; a machine's audio never reaches the dialogue.
A media that hands its frames over as they arrive (``DirectAudio``) is read without a task
woken per frame, unless a detector listens. The caller's keys go to the dialogue as they
come, but for those of the consent window (``consent.py``), which no dialogue sees. A secure
keypad entry (``secure_keypad.py``) takes the keys while it is open, and the dialogue then
hears silence. Silence the media filled in for a gap in the caller's audio (``GapFrame``) is
heard as silence, and the recording told so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import numpy as np

from voicedock.calls.live.consent import ConsentWindow
from voicedock.calls.live.secure_keypad import SecureKeypad
from voicedock.calls.live.taps import CallTaps
from voicedock.media.call_media import CallMedia, DirectAudio
from voicedock.media.codecs import Int16Array, Resampler, decode
from voicedock.media.gap_filler import GapFrame
from voicedock.pipeline.dialogue import Dialogue


class CallerAudio:
    """Caller frames in the session's wire format → 16-bit PCM at the VAD rate (streaming)."""

    def __init__(self, media: CallMedia, target_rate: int) -> None:
        self._format = media.format
        self.sample_rate = target_rate
        rate = media.format.sample_rate
        self._resampler = Resampler(rate, target_rate) if rate != target_rate else None

    def convert(self, frame: bytes) -> bytes:
        return self.convert_samples(decode(self._format, frame))

    def convert_samples(self, samples: Int16Array) -> bytes:
        """Decoded caller samples (the session's rate) → PCM at the VAD rate."""
        if self._resampler is not None:
            samples = self._resampler.process(samples)
        return np.asarray(samples, dtype="<i2").tobytes()


class LineWait(Protocol):
    """What takes the callee's first audio before the dialogue does: the voicemail screening
    (``screening.py``), a phone menu's navigation (``phone_menu.py``)."""

    @property
    def listening(self) -> bool:
        """The callee's audio is its own now."""
        ...

    @property
    def machine(self) -> bool:
        """A machine answered: none of its audio reaches the dialogue."""
        ...

    async def hear(self, pcm: bytes, dialogue: Dialogue) -> None:
        """The callee's audio at the dialogue's rate, while ``listening``."""
        ...


class CallerInput:
    def __init__(
        self,
        media: CallMedia,
        sample_rate: int,
        taps: CallTaps,
        screening: LineWait | None,
        consent: ConsentWindow | None = None,
        secure: SecureKeypad | None = None,
    ) -> None:
        """``sample_rate``: the dialogue's; the keys of ``consent``'s window are its own."""
        self._media, self._rate = media, sample_rate
        self._taps, self._screening = taps, screening
        self._consent, self._secure = consent, secure

    async def hear(self, dialogue: Dialogue) -> None:
        """The caller's audio to ``dialogue`` until the media ends."""
        media, screening, secure, consent = (
            self._media,
            self._screening,
            self._secure,
            self._consent,
        )
        caller = CallerAudio(media, self._rate)

        def recorded(frame: bytes) -> tuple[Int16Array, bool]:
            """The frame decoded and tapped; whether secure mode silences it (asked once)."""
            muted = secure is not None and secure.muted()
            samples = decode(media.format, frame)
            self._taps.caller(samples, muted, isinstance(frame, GapFrame))
            return samples, muted

        def hear(frame: bytes) -> None:
            samples, muted = recorded(frame)
            # Nothing of a secure entry is heard, nor what is said in the consent window.
            if muted or (consent is not None and consent.open):
                samples = np.zeros_like(samples)
            if screening is None or not screening.machine:  # never a machine's audio
                dialogue.feed_audio(caller.convert_samples(samples))

        if screening is None and isinstance(media, DirectAudio):
            await _hear_directly(media, media, hear)
            return
        async for frame in media.inbound_audio():
            if screening is not None and screening.listening:
                samples, _ = recorded(frame)
                await screening.hear(caller.convert_samples(samples), dialogue)
                continue
            hear(frame)

    async def keys(self, dialogue: Dialogue) -> None:
        """The caller's keys to ``dialogue`` until the media ends: those of the consent
        window are the window's, those of a secure entry the entry's alone."""
        consent, secure = self._consent, self._secure
        async for digit in self._media.dtmf():
            if consent is not None and consent.takes(digit):
                continue
            if secure is None or not secure.press(digit):
                dialogue.feed_dtmf(digit)


async def _hear_directly(
    media: CallMedia, direct: DirectAudio, hear: Callable[[bytes], None]
) -> None:
    """Caller frames handed to ``hear`` as they arrive (``direct``: the media, no task woken
    per frame) until the media ends; a failure of ``hear`` is raised here, as the reading loop
    would."""
    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def consume(frame: bytes) -> None:
        if failed.done():
            return
        try:
            hear(frame)
        except Exception as exc:  # noqa: BLE001 - raised below, in the call's task
            failed.set_exception(exc)

    direct.deliver_audio_to(consume)
    ended = asyncio.ensure_future(_until_ended(media))
    try:
        await asyncio.wait((failed, ended), return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
        direct.deliver_audio_to(None)  # the media holds nothing of the dialogue any more
    if failed.done():
        failed.result()


async def _until_ended(media: CallMedia) -> None:
    """Until ``media`` ends (its inbound iteration, once frames go elsewhere, only ends)."""
    async for _ in media.inbound_audio():
        pass
