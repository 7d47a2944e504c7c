"""Which final messages of a live call it keeps for its record, as they are said.

The dialogue tells each final message on the call's events (``MessageAdded``, in spoken
order); ``TranscriptDelivery`` subscribes to them and tells each one on as ``TranscriptKept``,
which the call's record listens to (in order, off the audio path: the bus's listeners). A
message that could not be stored is logged by the bus and the next one goes on: the call's
record at the end holds the whole transcript. Every message kept is handed to its listeners
before the bus closes (before the call's result).

Held (``hold()``), the messages said wait in memory, kept by nobody, until ``release()`` (then
in order, and the later ones as they come) or ``withhold()`` (then none, nor any later one): a
caller asked about keeping the call's transcript has not answered yet (``consent.py``).
"""

from __future__ import annotations

from voicedock.pipeline.dialogue.events import CallEvents, MessageAdded, TranscriptKept
from voicedock.pipeline.frames import TranscriptEntry
from voicedock.weak import weak_method


class TranscriptDelivery:
    def __init__(self, events: CallEvents) -> None:
        self._events = events
        self._held: list[TranscriptEntry] | None = None  # held: what waits for the answer
        self._withheld = False
        events.subscribe(MessageAdded, weak_method(self._added))  # the call owns both

    def _added(self, added: MessageAdded) -> None:
        self.put(added.entry)

    def put(self, entry: TranscriptEntry) -> None:
        """A final message said: kept now, held, or dropped."""
        if self._withheld:
            return
        if self._held is not None:
            self._held.append(entry)
            return
        self._events.emit(TranscriptKept(entry))

    def hold(self) -> None:
        """Keep what is said from now on until ``release`` or ``withhold``."""
        if not self._withheld and self._held is None:
            self._held = []

    def release(self) -> None:
        """Keep what was held, and from now on what is said."""
        held, self._held = self._held or [], None
        for entry in held:
            self._events.emit(TranscriptKept(entry))

    def withhold(self) -> None:
        """Drop what was held, and from now on everything said."""
        self._held, self._withheld = None, True
