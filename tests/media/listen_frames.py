"""The client's half of the live-listen wire (docs/live-listen.md): a binary message read back."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from voicedock.media.listen_tap import HEADER


def parse_frame(message: bytes) -> tuple[int, int, int, NDArray[np.int16]]:
    """One binary message → (channel, sequence, time in ms, samples): what a client does."""
    assert len(message) >= HEADER.size, "a listen frame"
    assert (len(message) - HEADER.size) % 2 == 0, "whole samples"
    channel, _flags, sequence, ms = HEADER.unpack_from(message)
    return channel, sequence, ms, np.frombuffer(message, "<i2", offset=HEADER.size)
