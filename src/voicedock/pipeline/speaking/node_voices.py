"""The voices this node can speak: each TTS engine's installed or configured voices.

* Piper: the operator's voice (``[speech] piper_model_path``, else the packaged
  ``en_US-joe-medium``), described by the ``.onnx.json`` beside the model (its language and
  sample rate), when Piper itself is installed;
* espeak-ng: every voice of ``espeak-ng --voices``, when the binary is installed;
* OpenAI: its fixed set of voices, when the operator configured an OpenAI key
  (``[speech] openai_api_key``);
* ElevenLabs: the voices of the operator's account (``[speech] elevenlabs_api_key``), asked
  of ElevenLabs (``elevenlabs_voices``, kept a few minutes).

A voice's ``id`` is ``<provider>:<voice>``; ``provider`` and ``voice`` are what an assistant's
``tts_config`` names to speak with it. The local lists are read once per process (a model file
or an espeak-ng installation does not change under a running node): ``node_voices`` blocks
the first time, so the event loop calls it in a worker thread.

Nothing here takes a path or a command line from a tenant: a voice is looked up in the list.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from voicedock.config import SpeechSettings
from voicedock.egress import Egress
from voicedock.errors import ProviderError

log = logging.getLogger("voicedock.pipeline")

PIPER = "piper"
ESPEAK = "espeak-ng"
OPENAI = "openai"
ELEVENLABS = "elevenlabs"
ELEVENLABS_RATE = 16000  # the output format the ElevenLabs client asks for by default
ELEVENLABS_TTL_S = 300.0  # an account's voice list is asked again after this
ESPEAK_RATE = 22050  # espeak-ng's own output rate
OPENAI_RATE = 24000  # the OpenAI speech API's PCM output
MULTILINGUAL = "mul"  # the BCP 47 tag of a voice that speaks many languages
# The OpenAI speech API's voices (a closed set, whoever's key is used).
OPENAI_TTS_VOICES = frozenset(
    {
        "alloy", "ash", "ballad", "cedar", "coral", "echo", "fable",
        "marin", "nova", "onyx", "sage", "shimmer", "verse",
    }
)  # fmt: skip
_ESPEAK_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Voice:
    provider: str  # the tts_config provider that speaks it
    voice: str  # its name with that provider (tts_config.voice)
    name: str  # for people
    language: str  # BCP 47; "mul": many
    sample_rate: int  # the engine's own output rate (Hz)
    cloud: bool = False

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.voice}"

    @property
    def tts_config(self) -> dict[str, str]:
        return {"provider": self.provider, "voice": self.voice}


def node_voices(speech: SpeechSettings) -> list[Voice]:
    """Every voice this node can speak with the operator's settings (blocks the first time)."""
    voices = [*piper_voices(speech.piper_model_path), *espeak_voices()]
    if speech.openai_api_key:
        voices += openai_voices()
    return voices


def voice_names(speech: SpeechSettings, provider: str) -> frozenset[str]:
    """The ``tts_config.voice`` names ``provider`` has on this node."""
    if provider == PIPER:
        return frozenset(v.voice for v in piper_voices(speech.piper_model_path))
    if provider == ESPEAK:
        return frozenset(v.voice for v in espeak_voices())
    if provider == OPENAI:
        return OPENAI_TTS_VOICES
    return frozenset()


@functools.cache
def piper_voices(model_path: str = "") -> tuple[Voice, ...]:
    """The operator's Piper voice (empty ``model_path``: the packaged one), if it loads here."""
    from voicedock.pipeline.providers.base import ProviderUnavailableError
    from voicedock.pipeline.providers.piper_tts import packaged_voice

    try:
        import piper  # noqa: F401

        model = Path(model_path) if model_path else packaged_voice()
        described = json.loads(Path(f"{model}.json").read_text())
        rate = int(described["audio"]["sample_rate"])
    except (ImportError, ProviderUnavailableError, OSError, ValueError, KeyError, TypeError):
        return ()
    language = described.get("language", {})
    code = str(language.get("code", "")) if isinstance(language, dict) else ""
    speaker = str(described.get("dataset") or model.stem)
    quality = described["audio"].get("quality")
    name = f"{speaker} ({quality})" if quality else speaker
    voice = model.name.removesuffix(".onnx")
    return (Voice(PIPER, voice, name, code.replace("_", "-") or MULTILINGUAL, rate),)


@functools.cache
def espeak_voices() -> tuple[Voice, ...]:
    """espeak-ng's voices (none when it is not installed)."""
    exe = shutil.which(ESPEAK)
    if exe is None:
        return ()
    try:
        done = subprocess.run(  # noqa: S603 - our binary, fixed arguments
            [exe, "--voices"], capture_output=True, timeout=_ESPEAK_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("espeak-ng --voices failed: %s", type(exc).__name__)
        return ()
    return tuple(parse_espeak_voices(done.stdout.decode(errors="replace")))


def parse_espeak_voices(listing: str) -> list[Voice]:
    """``espeak-ng --voices`` → voices: ``Pty Language Age/Gender VoiceName File ...``."""
    voices: dict[str, Voice] = {}
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        language, label = fields[1], fields[3]
        if language in voices or not language.replace("-", "").isalnum():
            continue
        if language != language.lower():  # ``-v`` is looked up in lower case: unreachable
            continue
        name = label.replace("_", " ")
        voices[language] = Voice(ESPEAK, language, name, language, ESPEAK_RATE)
    return list(voices.values())


def openai_voices() -> list[Voice]:
    return [
        Voice(OPENAI, v, v.capitalize(), MULTILINGUAL, OPENAI_RATE, cloud=True)
        for v in sorted(OPENAI_TTS_VOICES)
    ]


_accounts: dict[str, tuple[float, tuple[Voice, ...]]] = {}  # api key → (when, voices)


async def elevenlabs_voices(
    api_key: str, egress: Egress | None, *, base_url: str | None = None
) -> tuple[Voice, ...]:
    """The voices of the ElevenLabs account of ``api_key`` (none when ElevenLabs cannot be
    asked now: logged, asked again next time)."""
    from voicedock.pipeline.providers.elevenlabs import ELEVENLABS_BASE_URL, account_voices

    cached = _accounts.get(api_key)
    if cached is not None and time.monotonic() - cached[0] < ELEVENLABS_TTL_S:
        return cached[1]
    try:
        listed = await account_voices(
            api_key, base_url=base_url or ELEVENLABS_BASE_URL, egress=egress
        )
    except ProviderError as exc:
        log.warning("ElevenLabs voices not listed: %s", exc)
        return ()
    voices = tuple(
        Voice(ELEVENLABS, voice_id, name, language or MULTILINGUAL, ELEVENLABS_RATE, cloud=True)
        for voice_id, name, language in listed
        if voice_id.isalnum()
    )
    _accounts[api_key] = (time.monotonic(), voices)
    return voices
