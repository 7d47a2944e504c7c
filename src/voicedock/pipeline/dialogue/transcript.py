"""The call's transcript, each final message told once on the call's events (``MessageAdded``).

In spoken order (the turn engine): messages are kept by when they *started*, and each is handed
on as ``MessageAdded`` once no turn that started before it is still open (``open_since``: a
caller still talking or being transcribed, an assistant message still playing), so what it
delivers comes in spoken order too. Without ``open_since`` (a speech-to-speech provider, which
says when each message is final) a message is kept and handed on as it comes.

With a redaction plan that redacts card numbers, a message that ends with digits a card
number may go on from (``Redactor.goes_on``: "my card is 4111 1111") is held back, with what
follows it, until the same speaker's next message tells: the speaker's messages since are read
together (``Redactor.across``) and a card number said across them is replaced in each, and
its parts in the messages held behind them (an assistant repeating "4111 1111" back). A
message is held for the speaker's next ``SAID_ON_MESSAGES`` messages at most, and only while at
most ``OTHERS_BETWEEN`` messages of others come between ("go on"); the call's end hands on
what is held.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from voicedock.domain.redaction import Redactor
from voicedock.pipeline.dialogue.events import CallEvents, MessageAdded
from voicedock.pipeline.frames import TranscriptEntry

# A card number said over this many messages of one speaker at most.
SAID_ON_MESSAGES = 3
# Messages of others that may come between two parts of it (the assistant's "go on").
OTHERS_BETWEEN = 2


class TranscriptKeeper:
    def __init__(
        self,
        events: CallEvents | None,
        open_since: Callable[[], float | None] | None = None,
        provider: Callable[[str], str | None] | None = None,
        redactor: Redactor | None = None,
        member: str | None = None,
    ) -> None:
        """``provider``: which provider serves a message of this role now (the caller's: the
        STT's, the assistant's: the TTS's), noted on each message added that names none.
        ``redactor``: the assistant's redaction plan, applied to each message's content as it
        is kept and handed on, once, as it is added (and across a speaker's messages: card
        numbers); a message it leaves as it was lets go of its audio. ``member``: the squad's
        member whose dialogue it is, noted on each message."""
        self.entries: list[TranscriptEntry] = []
        self._redactor = redactor
        self._member = member
        self.language: str | None = None  # the call's language now, noted on each message
        self.node: str | None = None  # the flow's node now (flow_run.py), noted on each message
        self._provider = provider
        self._events = events
        self._open_since = open_since
        self._unreported: list[TranscriptEntry] = []  # final, held for spoken order
        # A speaker's messages a card number may go on from (held), and how many messages of
        # others came since the last of them.
        self._said_on: dict[str, list[TranscriptEntry]] = {}
        self._others_since: dict[str, int] = {}

    @property
    def holding(self) -> bool:
        """Some final message waits for an earlier turn to close."""
        return bool(self._unreported)

    def add(self, entry: TranscriptEntry) -> None:
        if self._redactor is not None:
            said, entry.content = entry.content, self._redactor.redact(entry.content)
            entry.redacted = entry.content != said
            self._read_on(entry, self._redactor)
        if not entry.redacted and not self._held(entry):
            entry.audio = None  # only a redacted message's audio is looked at again
        if self._member is not None and entry.member is None:
            entry.member = self._member
        if self.language is not None and entry.language is None:
            entry.language = self.language
        if self.node is not None and entry.node is None:
            entry.node = self.node
        if self._provider is not None and entry.provider is None:
            entry.provider = self._provider(entry.role)
        if self._open_since is None:
            self.entries.append(entry)
            self._unreported.append(entry)
        else:
            bisect.insort(self.entries, entry, key=_started_at)
            bisect.insort(self._unreported, entry, key=_started_at)
        self.report()

    def _read_on(self, entry: TranscriptEntry, redactor: Redactor) -> None:
        """The speaker's held messages read with ``entry`` (a card number said across them
        replaced in each); ``entry`` held in turn where one may go on from it, the others'
        held messages let go once too many messages came between."""
        for role in list(self._said_on):
            if role != entry.role:
                self._others_since[role] = self._others_since.get(role, 0) + 1
                if self._others_since[role] > OTHERS_BETWEEN:
                    self._let_go(role)
        held = self._said_on.get(entry.role, [])
        if held:
            texts, cards = redactor.across([e.content for e in held] + [entry.content])
            for one, text in zip([*held, entry], texts, strict=True):
                _changed(one, text)
            for waiting in self._unreported:  # held behind: a part repeated back meanwhile
                _changed(waiting, redactor.without_parts(waiting.content, cards))
        if redactor.goes_on(" ".join(one.content for one in [*held, entry])):
            self._said_on[entry.role] = [*held, entry][-SAID_ON_MESSAGES:]
            self._others_since[entry.role] = 0
            for gone in held[: len(held) + 1 - SAID_ON_MESSAGES]:
                _settled(gone)
        else:
            self._let_go(entry.role)

    def _let_go(self, role: str) -> None:
        for entry in self._said_on.pop(role, []):
            _settled(entry)
        self._others_since.pop(role, None)

    def _held(self, entry: TranscriptEntry) -> bool:
        return any(entry is one for held in self._said_on.values() for one in held)

    def report(self, *, everything: bool = False) -> None:
        """Tell final messages (``MessageAdded``) in spoken order: each once no turn that
        started before it is still open and no card number may go on from it (``everything``:
        the call is over)."""
        if everything:
            for role in list(self._said_on):
                self._let_go(role)
        if self._events is None:
            self._unreported.clear()
            return
        limit = None if everything or self._open_since is None else self._open_since()
        while self._unreported and (limit is None or self._unreported[0].started_at <= limit):
            if self._held(self._unreported[0]):
                return
            self._events.emit(MessageAdded(self._unreported.pop(0)))


def _started_at(entry: TranscriptEntry) -> float:
    return entry.started_at


def _changed(entry: TranscriptEntry, content: str) -> None:
    if content != entry.content:
        entry.content, entry.redacted = content, True


def _settled(entry: TranscriptEntry) -> None:
    """A message no card number goes on from any more: unredacted, it lets go of its audio."""
    if not entry.redacted:
        entry.audio = None
