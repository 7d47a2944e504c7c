"""Call-audio formats: one concept, one name.

A format is named as Asterisk's chan_websocket names it (``ulaw``, ``alaw``, ``slin16``...).
A trunk's ``codec`` (configuration, ``GET /trunks``), an assistant's ``media_format`` and the
``media_format`` a PBX opens a call's media in are all one of :data:`CALL_MEDIA_FORMATS`;
:func:`format_by_name` turns the name into the :class:`AudioFormat` the media path works with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

FRAME_MS: Final = 20
"""Asterisk's default ptime: chan_websocket cuts and re-times media into 20 ms frames."""


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """A call-audio format: its name (Asterisk's, also used on FreeSWITCH) and its wire
    properties."""

    name: str
    sample_rate: int
    bytes_per_sample: int
    silence_byte: int
    """Value of every byte of a silent frame (µ-law 0xFF, A-law 0xD5, linear 0x00)."""

    @property
    def is_linear(self) -> bool:
        return self.bytes_per_sample == 2

    def frame_bytes(self, ptime_ms: int = FRAME_MS) -> int:
        """Bytes of one frame of ``ptime_ms`` (Asterisk's optimal_frame_size for 20 ms)."""
        return self.sample_rate * ptime_ms // 1000 * self.bytes_per_sample

    def duration_ms(self, n_bytes: int) -> float:
        return n_bytes * 1000.0 / (self.sample_rate * self.bytes_per_sample)


ULAW: Final = AudioFormat("ulaw", 8000, 1, 0xFF)
ALAW: Final = AudioFormat("alaw", 8000, 1, 0xD5)
SLIN: Final = AudioFormat("slin", 8000, 2, 0x00)
SLIN16: Final = AudioFormat("slin16", 16000, 2, 0x00)
SLIN24: Final = AudioFormat("slin24", 24000, 2, 0x00)

FORMATS: Final[dict[str, AudioFormat]] = {f.name: f for f in (ULAW, ALAW, SLIN, SLIN16, SLIN24)}


def format_by_name(name: str) -> AudioFormat | None:
    """The format Asterisk calls ``name`` (MEDIA_START ``format:``); None if unsupported."""
    return FORMATS.get(name)


MediaFormatName = Literal["ulaw", "alaw", "slin16"]
CALL_MEDIA_FORMATS: Final[tuple[str, ...]] = get_args(MediaFormatName)
"""The formats a call's audio may take between the PBX and voicedock (the trunk's ``codec``,
the assistant's ``media_format``)."""
