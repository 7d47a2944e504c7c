"""The echo gate decides as its direct reference (``echo_reference.py``: the sent audio taken
and transformed anew for every chunk): the same decision on every 20 ms frame of varied lines
(echo delays 0-250 ms, gains -30..0 dB, line noise, the caller talking over the echo, silence,
audio queued while it plays, a barge-in's cut), at 8 and 16 kHz, in chunks of any length and
with other windows and ranges of lags, with the same correlation within float rounding."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import pytest

from voicedock.pipeline.hearing.echo import EchoGate, EchoGateConfig

from .echo_reference import ReferenceEchoGate
from .synth import espeak, frames, noise

pytestmark = pytest.mark.unit

FIRST = "Our opening hours are from nine in the morning until six in the evening."
SECOND = "You can also reach us by email, and we answer within a day."
CALLER = "Excuse me, I would like to speak to a person."


@functools.cache
def _speech(text: str, rate: int, voice: str = "en-us") -> npt.NDArray[np.float64]:
    pcm = espeak(text, rate, voice)
    if pcm is None:
        pytest.skip("espeak-ng is not installed")
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def _pcm(samples: npt.NDArray[np.float64]) -> bytes:
    return bytes(np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes())


def _call(rate: int, delay_ms: int, gain_db: float) -> tuple[bytes, dict[int, list[bytes | None]]]:
    """An inbound line and what is queued or cut at which frame: the first reply queued in
    400 ms pieces as it plays, a second after a short silence, cut by the caller talking
    over it."""
    frame = rate // 50
    first, second = _speech(FIRST, rate), _speech(SECOND, rate)
    caller = _speech(CALLER, rate, "en-gb+f3")
    piece = rate * 400 // 1000
    actions: dict[int, list[bytes | None]] = {}  # frame -> audio queued, or None: cut
    sent = np.zeros(len(first) + rate + len(second))
    for i in range(0, len(first), piece):  # a piece queued 200 ms before the one before ends
        actions.setdefault(max(0, i - piece // 2) // frame, []).append(_pcm(first[i : i + piece]))
    sent[: len(first)] = first
    second_at = (len(first) + rate * 3 // 10) // frame  # after 300 ms of silence
    actions.setdefault(second_at, []).append(_pcm(second))
    cut_at = second_at + len(second) // frame // 2
    actions.setdefault(cut_at, []).append(None)
    start = second_at * frame
    sent[start : cut_at * frame] = second[: cut_at * frame - start]
    delay = rate * delay_ms // 1000
    line = np.concatenate((np.zeros(delay), sent))[: len(sent)] * 10 ** (gain_db / 20)
    line += np.frombuffer(noise(len(line) * 1000 // rate + 20, rate, 0.001), "<i2")[: len(line)]
    talk = cut_at * frame - rate  # the caller talks over the second reply a second before the cut
    line[talk : talk + len(caller)] += caller[: len(line) - talk]
    return _pcm(line), actions


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("delay_ms", [0, 40, 120, 250, 450])  # 450: the range grows
@pytest.mark.parametrize("gain_db", [0.0, -6.0, -12.0, -20.0, -30.0])
def test_the_gate_decides_every_frame_as_the_direct_correlation(
    rate: int, delay_ms: int, gain_db: float
) -> None:
    inbound, actions = _call(rate, delay_ms, gain_db)
    echoes = _same_decisions(rate, frames(inbound, rate), actions)
    assert echoes > 0 or gain_db <= -30.0  # the line carried echo the gate recognized


@pytest.mark.parametrize("rate", [8000, 16000])
def test_chunks_of_any_length_are_decided_alike(rate: int) -> None:
    inbound, actions = _call(rate, 120, -12.0)
    sizes = np.random.default_rng(5).integers(1, 400, size=len(inbound)) * 2
    bounds = np.cumsum(sizes)[np.cumsum(sizes) < len(inbound)]
    chunks = [inbound[a:b] for a, b in zip([0, *bounds], [*bounds, len(inbound)], strict=True)]
    at = {int(np.searchsorted(bounds, i * rate // 50 * 2)): a for i, a in actions.items()}
    assert _same_decisions(rate, chunks, at) > 0


@pytest.mark.parametrize(
    "config",
    [
        EchoGateConfig(window_ms=20, max_delay_ms=300, lead_ms=0),
        EchoGateConfig(window_ms=200, max_delay_ms=2000, lead_ms=500),
        EchoGateConfig(window_ms=100, max_delay_ms=50, lead_ms=20, correlation=0.6),
    ],
    ids=["short-window", "longest-search", "short-search"],
)
def test_other_windows_and_ranges_of_lags_are_decided_alike(config: EchoGateConfig) -> None:
    inbound, actions = _call(8000, 40, -6.0)
    assert _same_decisions(8000, frames(inbound, 8000), actions, config) > 0


def _same_decisions(
    rate: int,
    chunks: list[bytes],
    actions: dict[int, list[bytes | None]],
    config: EchoGateConfig | None = None,
) -> int:
    """Feed both gates; the chunks the gate decided to be echo."""
    gate, reference = EchoGate(rate, config), ReferenceEchoGate(rate, config)
    echoes = 0
    for i, chunk in enumerate(chunks):
        for audio in actions.get(i, []):
            for g in (gate, reference):
                g.play(audio) if audio is not None else g.cut()
        gate.hear(chunk)
        reference.hear(chunk)
        assert gate.active == reference.active
        decided = gate.is_echo()
        assert decided == reference.is_echo(), f"frame {i}"
        assert gate.last_correlation == pytest.approx(reference.last_correlation, abs=1e-9)
        assert gate.last_cancel_db == pytest.approx(reference.last_cancel_db, abs=1e-6)
        echoes += decided
    return echoes
