"""The turn-taking corpus: callers' turns synthesized here, labelled with where the turn ends.

Nothing is downloaded and no audio is committed: each item is synthesized at bench time with
the project's own voices (Piper with the packaged voice at three speaking rates, espeak-ng
with English and German voices and variants) and cached under a directory keyed by the
corpus's definition, so the same code always yields the same audio.

Kinds of turn:

Each item's words are synthesized as one utterance and cut where its pauses go (``cut``), so
the words before a pause keep the voice of a sentence going on; the pauses are inserted.

* ``complete``: one finished sentence;
* ``pause``: a sentence broken mid-way by a pause of 300-1,500 ms ("I would like to book an
  appointment for … Tuesday morning.");
* ``filler``: a hesitation with a filler between pauses ("… uh … ", "… hmm … ");
* ``trailing``: a first part trailing off on "and" then a pause, then the rest.

Each item is 8 kHz 16-bit PCM that went through G.711 µ-law and back, as on the phone, with
``LEAD_MS`` of silence before the first word and ``TAIL_MS`` after the last. Its labels: the
speech spans (each segment's synthesized speech, its leading and trailing silence trimmed),
and ``end_ms``, where the turn really ends (the end of the last span). Any end of turn decided
before ``end_ms`` is an early cut-off.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from voicedock.media.codecs import ulaw_decode, ulaw_encode

RATE = 8000
LEAD_MS = 300  # silence before the first word
TAIL_MS = 2500  # silence after the last word: room for the slowest decision
TRIM_DBFS = -45.0  # a 10 ms window above this (of full scale) is speech, for the labels
KINDS = ("complete", "pause", "filler", "trailing")
# Bumped whenever the synthesis or the assembly changes: the cache follows it.
VERSION = 2


@dataclass(frozen=True, slots=True)
class Voice:
    """A speaker: Piper's packaged voice at a speaking rate, or an espeak-ng voice."""

    engine: str  # "piper" | "espeak"
    name: str  # espeak-ng voice ("de+m3"); for Piper, a label
    language: str  # "en" | "de"
    speed: float = 1.0  # Piper's length scale; espeak-ng: words per minute / 165


VOICES = (
    Voice("piper", "joe", "en", 1.0),
    Voice("piper", "joe-slow", "en", 1.2),
    Voice("piper", "joe-fast", "en", 0.85),
    Voice("espeak", "en-us+f3", "en", 0.95),
    Voice("espeak", "en-gb+m4", "en", 1.0),
    Voice("espeak", "de", "de", 1.0),
    Voice("espeak", "de+f2", "de", 0.9),
    Voice("espeak", "de+m3", "de", 1.1),
)

# (first part, second part): the first part alone leaves the sentence open.
SPLITS: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        ("I would like to book an appointment for", "Tuesday morning, please."),
        ("My account number is four five", "seven two."),
        ("I am calling because my order from last week", "has not arrived yet."),
        ("Could you tell me when the", "pharmacy opens tomorrow?"),
        ("We need a table for four people on", "Saturday evening."),
        ("I forgot my password and I cannot", "log in to my account."),
        ("The delivery should go to my office at", "Main Street twelve."),
        ("I would like to move my appointment to", "Thursday afternoon."),
    ),
    "de": (
        ("Ich möchte gerne einen Termin für", "Dienstag vormittag vereinbaren."),
        ("Meine Kundennummer ist vier fünf", "sieben zwei."),
        ("Ich rufe an, weil meine Bestellung von letzter Woche", "noch nicht angekommen ist."),
        ("Können Sie mir sagen, wann die", "Apotheke morgen öffnet?"),
        ("Wir brauchen einen Tisch für vier Personen am", "Samstag abend."),
        ("Ich habe mein Passwort vergessen und kann mich", "nicht mehr anmelden."),
    ),
}
COMPLETE: dict[str, tuple[str, ...]] = {
    "en": (
        "I would like to book an appointment on Monday morning.",
        "Can you send me the invoice for last month by email?",
        "Thank you very much, that is all I needed.",
        "Yes, that works for me.",
        "No, I would rather come in the afternoon.",
        "Please ask the doctor to call me back after three.",
        "How much does a cleaning cost without insurance?",
        "I am running about fifteen minutes late today.",
    ),
    "de": (
        "Ich möchte einen Termin am Montag vormittag.",
        "Können Sie mir die Rechnung per E-Mail schicken?",
        "Vielen Dank, das war alles.",
        "Ja, das passt mir gut.",
        "Nein, ich komme lieber am Nachmittag.",
        "Bitte rufen Sie mich nach drei Uhr zurück.",
    ),
}
FILLERS = {"en": ("uh", "hmm", "um"), "de": ("äh", "hmm", "ähm")}
AND = {"en": "and", "de": "und"}
TRAILING: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        ("I need a new bank card", "my PIN as well."),
        ("I would like to cancel my subscription", "get a refund for this month."),
        ("We are moving next month", "I want to update my address."),
    ),
    "de": (
        ("Ich brauche eine neue Bankkarte", "auch eine neue PIN."),
        ("Wir ziehen nächsten Monat um", "ich möchte meine Adresse ändern."),
    ),
}


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    pause_after_ms: int  # silence after it (0 for the last)


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """What to synthesize: the item's definition (its audio follows from it)."""

    key: str
    kind: str
    voice: Voice
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)


@dataclass(frozen=True, slots=True)
class Item:
    """A synthesized turn with its labels (times in ms of the item's audio)."""

    spec: ItemSpec
    pcm: bytes  # 8 kHz 16-bit mono, through µ-law and back
    spans: tuple[tuple[int, int], ...]  # speech, [start, end) per segment
    end_ms: int  # where the turn really ends

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) * 1000 // (2 * RATE)

    @property
    def pauses(self) -> tuple[tuple[int, int], ...]:
        """The silences inside the turn (between two spans)."""
        return tuple((a[1], b[0]) for a, b in zip(self.spans, self.spans[1:], strict=False))


def specs(seed: int = 47, per_voice: int = 6) -> list[ItemSpec]:
    """The corpus's items, the same for the same seed: per voice, ``per_voice`` items drawn
    over the kinds in turn (half of them finished sentences, half hesitant ones)."""
    rng = random.Random(seed)
    out: list[ItemSpec] = []
    for voice in VOICES:
        lang = voice.language
        for n in range(per_voice):
            kind = ("complete", "pause", "complete", "filler", "complete", "trailing")[n % 6]
            key = f"{voice.name}-{n:02d}-{kind}"
            pause = rng.randrange(300, 1501, 20)
            if kind == "complete":
                segments = (Segment(rng.choice(COMPLETE[lang]), 0),)
            elif kind == "pause":
                first, rest = rng.choice(SPLITS[lang])
                segments = (Segment(first, pause), Segment(rest, 0))
            elif kind == "filler":
                first, rest = rng.choice(SPLITS[lang])
                filler = rng.choice(FILLERS[lang])
                second = rng.randrange(300, 1001, 20)
                segments = (Segment(first, pause), Segment(filler, second), Segment(rest, 0))
            else:
                first, rest = rng.choice(TRAILING[lang])
                segments = (Segment(f"{first} {AND[lang]}", pause), Segment(rest, 0))
            out.append(ItemSpec(key, kind, voice, segments))
    return out


Synthesize = Callable[[Voice, str], bytes]  # a voice's 8 kHz PCM of a text


def synthesizer() -> Synthesize:
    """The project's own voices: Piper (packaged voice) and espeak-ng, at 8 kHz."""
    from voicedock.pipeline.providers.espeak_tts import EspeakTts
    from voicedock.pipeline.providers.piper_tts import PiperTts

    piper: dict[float, PiperTts] = {}

    def synthesize(voice: Voice, text: str) -> bytes:
        if voice.engine == "piper":
            tts = piper.setdefault(
                voice.speed, PiperTts(sample_rate=RATE, length_scale=voice.speed)
            )
            return tts.synthesize_sentence(text)
        wpm = round(165 * voice.speed)
        return EspeakTts(
            sample_rate=RATE, voice=voice.name, words_per_minute=wpm
        ).synthesize_sentence(text)

    return synthesize


def speech_bounds(pcm: bytes, rate: int = RATE, floor_dbfs: float = TRIM_DBFS) -> tuple[int, int]:
    """The first and last sample (end exclusive) of 10 ms windows louder than ``floor_dbfs``;
    (0, 0) when nothing is."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    win = rate // 100
    n = len(samples) // win
    if n == 0:
        return 0, 0
    frames = samples[: n * win].reshape(n, win)
    rms = np.sqrt(np.mean(frames**2, axis=1)) / 32768.0
    loud = np.flatnonzero(rms > 10 ** (floor_dbfs / 20))
    if loud.size == 0:
        return 0, 0
    return int(loud[0]) * win, int(loud[-1] + 1) * win


def assemble(spec: ItemSpec, speech: Sequence[bytes]) -> Item:
    """The item from each segment's synthesized audio: trimmed, joined by the pauses, framed
    by ``LEAD_MS`` and ``TAIL_MS`` of silence, carried through µ-law."""
    per_ms = RATE // 1000
    out = bytearray(b"\0" * (LEAD_MS * per_ms * 2))
    spans: list[tuple[int, int]] = []
    for segment, pcm in zip(spec.segments, speech, strict=True):
        start, end = speech_bounds(pcm)
        if end <= start:
            raise ValueError(f"{spec.key}: no speech synthesized for a segment")
        at_ms = len(out) // (2 * per_ms)
        voiced = pcm[2 * start : 2 * end]
        voiced += b"\0" * ((-len(voiced)) % (2 * per_ms))  # whole milliseconds
        out += voiced
        spans.append((at_ms, at_ms + len(voiced) // (2 * per_ms)))
        out += b"\0" * (segment.pause_after_ms * per_ms * 2)
    out += b"\0" * (TAIL_MS * per_ms * 2)
    phone = ulaw_decode(ulaw_encode(bytes(out))).tobytes()
    return Item(spec, phone, tuple(spans), spans[-1][1])


def _digest(items: Iterable[ItemSpec]) -> str:
    text = json.dumps([asdict(s) for s in items], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(f"{VERSION}|{text}".encode()).hexdigest()[:16]


def cut(whole: bytes, prefixes: Sequence[bytes], rate: int = RATE) -> list[bytes]:
    """``whole`` (the item's text spoken as one utterance) cut into its segments: each cut at
    the quietest 30 ms near where the segment's words end, estimated from the same words
    spoken alone (``prefixes``: the first segment, the first two, ...). Spoken alone, words
    end a sentence (falling pitch, the last syllable drawn out): cut from one utterance they
    keep the voice of a speaker who stops in mid-flow."""
    start, end = speech_bounds(whole, rate)
    samples = np.frombuffer(whole, dtype="<i2")[start:end].astype(np.float64)
    win, hop = rate * 30 // 1000, rate // 200
    cuts = [0]
    for prefix in prefixes:
        a, b = speech_bounds(prefix, rate)
        estimate = b - a  # alone: drawn out, so the words end no later (a little slack)
        lo = max(cuts[-1] + win, int(0.7 * estimate))
        hi = min(len(samples) - win, int(1.05 * estimate))
        if hi <= lo:
            raise ValueError("a segment's words could not be found in the utterance")
        energy = [np.mean(samples[i : i + win] ** 2) for i in range(lo, hi, hop)]
        cuts.append(lo + hop * int(np.argmin(energy)) + win // 2)
    cuts.append(len(samples))
    pcm = samples.astype("<i2").tobytes()
    return [pcm[2 * a : 2 * b] for a, b in itertools.pairwise(cuts)]


def build(
    cache_dir: Path, items: Sequence[ItemSpec], synthesize: Synthesize | None = None
) -> list[Item]:
    """The items: each item's text synthesized once as one utterance, and the words before
    each pause alone, into ``cache_dir/turn-corpus-<digest of the definition>/`` (the cutting
    and assembly are cheap and done every time)."""
    where = cache_dir / f"turn-corpus-{_digest(items)}"
    where.mkdir(parents=True, exist_ok=True)
    out: list[Item] = []
    for spec in items:
        texts = [
            " ".join(s.text for s in spec.segments[: k + 1]) for k in range(len(spec.segments))
        ]
        speech = []
        for i, text in enumerate(texts):
            path = where / f"{spec.key}.{i}.pcm"
            if not path.exists():
                synthesize = synthesize or synthesizer()
                partial = path.with_suffix(".part")
                partial.write_bytes(synthesize(spec.voice, text))
                partial.rename(path)
            speech.append(path.read_bytes())
        out.append(assemble(spec, cut(speech[-1], speech[:-1])))
    return out


def default_cache() -> Path:
    return Path.home() / ".cache" / "voicedock" / "bench"
