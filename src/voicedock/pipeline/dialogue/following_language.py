"""The dialogue following the caller's language: each turn's detected language (judged by
``CallLanguages``) is noted on the transcript, and on a switch the model is asked to answer
in the new language (its line after the instructions) and its voice speaks the replies; back
in the assistant's own language, both are the assistant's again."""

from __future__ import annotations

from voicedock.pipeline.dialogue.assistant_audio import AssistantAudio
from voicedock.pipeline.dialogue.history import ModelHistory
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.frames import HeardAudio
from voicedock.pipeline.hearing.language import CallLanguages
from voicedock.pipeline.providers.base import Tts


class FollowingLanguage:
    """Keeps the transcript's language, the model's language line and the assistant's voice
    in the call's language. The call starts in ``languages.current`` (it may open in one of
    the listed languages: ``CallLanguages.open_in``)."""

    def __init__(
        self,
        languages: CallLanguages,
        own_voice: Tts,
        transcript: TranscriptKeeper,
        history: ModelHistory,
        audio: AssistantAudio,
    ) -> None:
        self._languages, self._own_voice = languages, own_voice
        self._transcript, self._history, self._audio = transcript, history, audio
        self._speak_in(languages.current)

    async def heard(self, audio: HeardAudio, words: int) -> None:
        """A caller's turn of ``words`` words: follow it into its language if it switches."""
        before = self._languages.current
        now = await self._languages.heard(audio.pcm, audio.sample_rate, words)
        if now != before:
            self._speak_in(now)

    def _speak_in(self, language: str) -> None:
        self._transcript.language = language
        spoken = self._languages.spoken(language)
        self._history.language_line = spoken.instruction if spoken is not None else ""
        voice = spoken.voice if spoken is not None else None
        self._audio.use_voice(voice if voice is not None else self._own_voice)


def following_language(
    languages: CallLanguages | None,
    own_voice: Tts,
    transcript: TranscriptKeeper,
    history: ModelHistory,
    audio: AssistantAudio,
) -> FollowingLanguage | None:
    """The call's following of the caller's language; none for an assistant of one language."""
    if languages is None:
        return None
    return FollowingLanguage(languages, own_voice, transcript, history, audio)
