"""The caller's words a speech-to-speech session heard but neither transcribed nor answered:
what a pipeline taking over a failed session hears again
(``pipeline/dialogue/realtime_fallback.py``), so the caller never repeats themself and never waits
for an answer that cannot come.

The session's server VAD tells when a turn of the caller starts (``started``) and ends
(``stopped``). A turn is settled once the session transcribed it (``transcribed``: its words
are in the transcript, oldest turn first) or answered it (``answered``: the model's reply
answers what it heard). The audio of every turn not settled is kept, each with a short
pre-roll (the server decides a turn started after its first syllable), at most ``MAX_S``
seconds in all, the oldest dropped first. Once the session failed (``failed``) everything the
caller says is kept too, until the pipeline takes it (``take``).
"""

from __future__ import annotations

MAX_S = 30.0
PRE_ROLL_S = 0.5


class UnansweredTurns:
    def __init__(self, sample_rate: int) -> None:
        """``sample_rate``: the caller's audio (16-bit mono PCM)."""
        self._bytes_per_s = sample_rate * 2
        self._pre_roll = bytearray()
        self._turns: list[bytearray] = []  # oldest first; the last one open while ``_open``
        self._open = False
        self._failed = False

    @property
    def pending(self) -> bool:
        """Some of the caller's words are neither transcribed nor answered."""
        return bool(self._turns)

    def feed(self, pcm: bytes) -> None:
        """The caller's audio, as it comes."""
        if self._open:
            self._turns[-1] += pcm
            self._bound()
            return
        self._pre_roll += pcm
        del self._pre_roll[: max(0, len(self._pre_roll) - int(PRE_ROLL_S * self._bytes_per_s))]

    def started(self) -> None:
        """The server VAD heard the caller start a turn."""
        if not self._open:
            self._turns.append(bytearray(self._pre_roll))
            self._pre_roll.clear()
            self._open = True

    def stopped(self) -> None:
        """The server VAD ended the caller's turn (once the session failed, nothing ends)."""
        self._open = self._failed

    def transcribed(self) -> None:
        """The session's transcript of the oldest turn ended is in the call's transcript."""
        if self._turns and not (self._open and len(self._turns) == 1):
            del self._turns[0]

    def answered(self) -> None:
        """The model answered what it heard: every turn ended is settled."""
        self._turns = self._turns[-1:] if self._open else []

    def failed(self) -> None:
        """The session failed: from now on all of the caller's audio is kept."""
        self._failed = True
        self.started()

    def take(self) -> bytes:
        """What is kept, in order, given up (the pipeline hears it next)."""
        pcm = b"".join(self._turns)
        self._turns.clear()
        self._open = False
        return pcm

    def _bound(self) -> None:
        over = sum(map(len, self._turns)) - int(MAX_S * self._bytes_per_s)
        while over > 0 and self._turns:
            oldest = self._turns[0]
            cut = min(over, len(oldest))
            del oldest[:cut]
            over -= cut
            if not oldest and len(self._turns) > 1:
                del self._turns[0]
