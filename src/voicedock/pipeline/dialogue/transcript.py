"""The call's transcript, and ``on_transcript`` seeing each final message once.

In spoken order (the turn engine): messages are kept by when they *started*, and each is handed
to ``on_transcript`` once no turn that started before it is still open (``open_since``: a
caller still talking or being transcribed, an assistant message still playing), so what it
delivers comes in spoken order too. Without ``open_since`` (a speech-to-speech provider, which
says when each message is final) a message is kept and handed on as it comes.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from voicedock.pipeline.frames import TranscriptEntry


class TranscriptKeeper:
    def __init__(
        self,
        on_transcript: Callable[[TranscriptEntry], None] | None,
        open_since: Callable[[], float | None] | None = None,
        provider: Callable[[str], str | None] | None = None,
        redact: Callable[[str], str] | None = None,
        member: str | None = None,
    ) -> None:
        """``provider``: which provider serves a message of this role now (the caller's: the
        STT's, the assistant's: the TTS's), noted on each message added that names none.
        ``redact``: each message's content as it is kept and handed on (the assistant's
        redaction plan), applied once, as it is added; a message it leaves as it was lets go
        of its audio. ``member``: the squad's member whose dialogue it is, noted on each
        message."""
        self.entries: list[TranscriptEntry] = []
        self._redact = redact
        self._member = member
        self._provider = provider
        self._on_transcript = on_transcript
        self._open_since = open_since
        self._unreported: list[TranscriptEntry] = []  # final, held for spoken order

    @property
    def holding(self) -> bool:
        """Some final message waits for an earlier turn to close."""
        return bool(self._unreported)

    def add(self, entry: TranscriptEntry) -> None:
        if self._redact is not None:
            said, entry.content = entry.content, self._redact(entry.content)
            entry.redacted = entry.content != said
        if not entry.redacted:
            entry.audio = None  # only a redacted message's audio is looked at again
        if self._member is not None and entry.member is None:
            entry.member = self._member
        if self._provider is not None and entry.provider is None:
            entry.provider = self._provider(entry.role)
        if self._open_since is None:
            self.entries.append(entry)
            if self._on_transcript is not None:
                self._on_transcript(entry)
            return
        bisect.insort(self.entries, entry, key=_started_at)
        bisect.insort(self._unreported, entry, key=_started_at)
        self.report()

    def report(self, *, everything: bool = False) -> None:
        """Hand final messages to ``on_transcript`` in spoken order: each once no turn that
        started before it is still open (``everything``: the call is over)."""
        if self._on_transcript is None:
            self._unreported.clear()
            return
        limit = None if everything or self._open_since is None else self._open_since()
        while self._unreported and (limit is None or self._unreported[0].started_at <= limit):
            self._on_transcript(self._unreported.pop(0))


def _started_at(entry: TranscriptEntry) -> float:
    return entry.started_at
