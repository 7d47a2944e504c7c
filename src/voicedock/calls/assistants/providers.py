"""The ``provider`` of an assistant configuration: the names it may take, which of them
are speech-to-speech (the model speaks itself: no STT or TTS section), and which need
their own STT and TTS sections."""

from typing import Literal, get_args

Provider = Literal["offline", "openai", "mistral", "xai_realtime"]
PROVIDERS: tuple[str, ...] = get_args(Provider)
SPEECH_TO_SPEECH = frozenset({"xai_realtime"})
NEEDS_STT_AND_TTS = frozenset({"openai", "mistral"})
