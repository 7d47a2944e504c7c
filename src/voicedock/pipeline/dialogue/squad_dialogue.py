"""A call that goes on with another assistant of its squad when the model hands it over.

``SquadDialogue`` is the call's ``Dialogue`` when it was placed with a squad: it runs the
dialogue of the member speaking now (the turn engine or the speech-to-speech one, made by the
call, ``calls/live/squad.py``), and when that member's model hands the call over (its
``handoff`` tool: the dialogue ends ``HANDED_OVER``, what was being said said first), the
call goes on with the dialogue of the member named, made with the call so far as its model's
history (``carried_history``: the caller's and the assistants' messages, the tools' results
as notes), under the new member's own instructions, voice and tools; its transition (or first
message) is the first thing it says. So:

* what the caller heard stays said, each message in the transcript once, as heard;
* the caller's words while the next member starts are held and heard by it (transcribed and
  answered), so they need not repeat themself;
* what is asked meanwhile (say, inject-context, end-call, keys) waits for the next member,
  then goes to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, Self, runtime_checkable

from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.carried import carried_history
from voicedock.pipeline.dialogue.chain import DialogueChain
from voicedock.pipeline.dialogue.ending import HANDED_OVER
from voicedock.pipeline.frames import ChatMessage

# The next member's dialogue: for the member named, with the call so far as its history.
NextMember = Callable[[str, tuple[ChatMessage, ...]], Awaitable[Dialogue]]


@runtime_checkable
class HandsOver(Protocol):
    """A dialogue that hands the call over (then it ends ``HANDED_OVER``)."""

    @property
    def handed_over_to(self) -> str | None: ...

    def hand_over(self, member: str) -> None:
        """Hand the call over to ``member`` once what is being said was said."""
        ...


class SquadDialogue(DialogueChain):
    """One call's dialogue across the members of its squad, one at a time."""

    def __init__(self, first: Dialogue, next_member: NextMember, *, sample_rate: int) -> None:
        """``first``: the first member's dialogue (not entered yet); ``next_member`` makes the
        dialogue of the member a handoff names."""
        super().__init__(sample_rate, "squad call")
        self._dialogues: list[Dialogue] = [first]
        self._next_member = next_member

    # ── lifecycle ────────────────────────────────────────────────────────────────────────
    async def __aenter__(self) -> Self:
        await self._tasks.start()
        first = self._dialogues[0]
        await first.__aenter__()
        self._tasks.spawn(self._follow(first))
        return self

    async def _close_dialogues(self, on_quiet: Callable[[], Awaitable[None]] | None) -> None:
        await self._dialogues[-1].aclose(on_quiet)

    # ── what every member hears and says ─────────────────────────────────────────────────
    @property
    def assistant_audible(self) -> bool:
        return self._dialogues[-1].assistant_audible

    def feed_audio(self, pcm: bytes) -> None:
        if self._moving:
            self._held.hold(pcm)
            return
        self._dialogues[-1].feed_audio(pcm)

    def hand_over(self, member: str) -> bool:
        """The call goes on with ``member`` once what is being said was said (an operator's
        handoff); False when the member speaking cannot hand the call over, or a handoff is
        under way already."""
        speaking = self._dialogues[-1]
        if self._moving or self._closed or not isinstance(speaking, HandsOver):
            return False
        speaking.hand_over(member)
        return True

    # ── the handoff ──────────────────────────────────────────────────────────────────────
    async def _follow(self, dialogue: Dialogue) -> None:
        while True:
            reason = await dialogue.wait_ended()
            member = _handed_over_to(dialogue) if reason == HANDED_OVER else None
            if member is None:
                self._end(reason)
                return
            self._moving = True  # from now on the caller's audio waits for the next member
            async with self._move:
                await dialogue.aclose()  # what was cut is in its transcript, as heard
                dialogue = await self._next_member(member, carried_history(self.transcript))
                await dialogue.__aenter__()
                self._dialogues.append(dialogue)
                self._moving = False
                self._went_on(dialogue, self._tasks)

    @property
    def member_dialogue(self) -> Dialogue | None:
        """The dialogue of the member who has the call (None: it is being handed over)."""
        return self._speaking()

    # ── helpers ──────────────────────────────────────────────────────────────────────────
    def _chain(self) -> list[Dialogue]:
        return self._dialogues

    def _speaking(self) -> Dialogue | None:
        return None if self._moving else self._dialogues[-1]


def _handed_over_to(dialogue: Dialogue) -> str | None:
    return dialogue.handed_over_to if isinstance(dialogue, HandsOver) else None
