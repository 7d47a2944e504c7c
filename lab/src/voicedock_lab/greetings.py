"""Generated answering-machine and person greetings: what an outbound call hears first.

Spoken by espeak-ng (many voices, any speed) with synthetic beeps, as 16-bit mono PCM at a
call rate: the answering-machine detector's unit tests and its benchmark
(``bench/answering_machine.py``) are built from them. ``machine_greeting`` is a recorded
greeting (sentences with short pauses) optionally followed by a beep; ``person_hello`` is a
short "Hello?" then silence, as a person waits for the caller to speak.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from voicedock.media.codecs import resample_signal
from voicedock.pipeline.providers.espeak_tts import parse_wav
from voicedock_lab.errors import LabError

MACHINE_TEXTS = (
    "Hi, you have reached Alex Miller. I can't take your call right now. "
    "Please leave your name and number after the tone.",
    "Thank you for calling. Nobody is available to answer. Leave a message after the beep.",
    "The person you are calling is not available. Please record your message after the tone.",
    "Hello, this is Sam. I'm away from the phone. Leave a message and I'll call you back.",
)
PERSON_TEXTS = ("Hello?", "Yes?", "Hello, who is this?", "Hi.")


@dataclass(frozen=True, slots=True)
class Voice:
    name: str = "en-us"
    words_per_minute: int = 165


def espeak_pcm(text: str, voice: Voice, rate: int) -> bytes:
    """``text`` spoken by espeak-ng as 16-bit PCM at ``rate`` (sentences back to back)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise LabError("espeak-ng is not installed (apt install espeak-ng)")
    args = [exe, "--stdout", "-v", voice.name, "-s", str(voice.words_per_minute)]
    out = subprocess.run(args, input=text.encode(), capture_output=True, check=True).stdout  # noqa: S603
    pcm, source_rate = parse_wav(out)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    resampled = resample_signal(samples, source_rate, rate) if source_rate != rate else samples
    return (np.clip(resampled, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def silence(ms: int, rate: int) -> bytes:
    return bytes(rate * ms // 1000 * 2)


def beep(hz: float, ms: int, rate: int, level: float = 0.3) -> bytes:
    """A steady tone with 5 ms ramps, as an answering machine plays before recording."""
    n = rate * ms // 1000
    t = np.arange(n) / rate
    tone = level * np.sin(2 * np.pi * hz * t)
    ramp = min(n // 2, rate * 5 // 1000)
    if ramp:
        tone[:ramp] *= np.linspace(0, 1, ramp)
        tone[-ramp:] *= np.linspace(1, 0, ramp)
    return (tone * 32767).astype("<i2").tobytes()


def machine_greeting(
    text: str,
    voice: Voice,
    rate: int,
    *,
    beep_hz: float | None = 1000.0,
    beep_ms: int = 400,
    lead_ms: int = 300,
    gap_ms: int = 400,
) -> tuple[bytes, float]:
    """A recorded greeting (sentences ``gap_ms`` apart), then the beep; returns the audio and
    where the greeting ends (the beep's end when there is one), in seconds."""
    sentences = [s.strip() for s in text.replace("?", ".").split(".") if s.strip()]
    parts = [silence(lead_ms, rate)]
    for i, sentence in enumerate(sentences):
        if i:
            parts.append(silence(gap_ms, rate))
        parts.append(espeak_pcm(sentence + ".", voice, rate))
    if beep_hz is not None:
        parts += [silence(300, rate), beep(beep_hz, beep_ms, rate)]
    audio = b"".join(parts)
    return audio + silence(3000, rate), len(audio) / (2 * rate)


def person_hello(text: str, voice: Voice, rate: int, *, lead_ms: int = 400) -> bytes:
    """A person picking up: a short greeting, then silence (they wait for the caller)."""
    return silence(lead_ms, rate) + espeak_pcm(text, voice, rate) + silence(4000, rate)
