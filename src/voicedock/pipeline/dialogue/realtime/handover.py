"""A pipeline taking over a failed speech-to-speech session
(``pipeline/dialogue/realtime_fallback.py``).

Where the assistant's fallback plan has a pipeline go on (``after_s``: ``hand_over_after_s``),
a failed session (refused, dropped, a server error or a failed response, no answer within
``after_s``) ends the dialogue with ``SESSION_FAILED`` instead of the spoken fallback: nothing
new starts, what is being said is played (within ``fallback_timeout_s``), then the dialogue
ends (``fail``). The caller's words the session neither transcribed nor answered are kept all
along (``unanswered_turns.py``), and all they say once it failed; ``take`` gives the pipeline
what it goes on from.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass

from voicedock.logs import describe
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.ending import SPEECH_FAILURES, CallEnd
from voicedock.pipeline.dialogue.interruptible_tasks import InterruptibleTasks
from voicedock.pipeline.dialogue.realtime.messages import AssistantMessages
from voicedock.pipeline.dialogue.realtime.unanswered_turns import UnansweredTurns

log = logging.getLogger("voicedock.pipeline")

# The end of a dialogue whose failed session a pipeline takes over (never a call's end reason).
SESSION_FAILED = "session-failed"


@dataclass(frozen=True, slots=True)
class Handover:
    """What a pipeline taking over a failed session goes on from (the transcript aside)."""

    error: Exception  # why the session failed
    # The caller's words the session neither transcribed nor answered, then all they said
    # since it failed; ``caller_turn``: some were said before it failed.
    unanswered: bytes
    caller_turn: bool
    reply_cut: bool  # the model's reply stopped midway (kept as heard)
    awaiting_reply: bool  # the caller's last turn (or keys) is not answered yet


class SessionHandover:
    def __init__(
        self,
        config: ConversationConfig,
        end: CallEnd,
        messages: AssistantMessages,
        interruptible: InterruptibleTasks,
        *,
        after_s: float | None,
    ) -> None:
        """``after_s`` None: no pipeline takes over (a failed session ends the call)."""
        self.after_s = after_s
        self.unanswered = UnansweredTurns(config.sample_rate)
        self._config, self._end = config, end
        self._messages, self._interruptible = messages, interruptible
        self.handing_over = False  # the session failed: the dialogue ends for a pipeline
        self._handover: Handover | None = None

    @property
    def enabled(self) -> bool:
        """A pipeline takes over when the session fails."""
        return self.after_s is not None

    def feed(self, pcm: bytes) -> None:
        """The caller's audio, kept for the pipeline should the session fail."""
        if self.enabled and not self._end.closed:
            self.unanswered.feed(pcm)

    def takes_over(self, exc: Exception, *, session_over: bool) -> bool:
        """A task failed with ``exc``: the session's failure, for the pipeline to take over
        (a failing voice is the call's, as ever)."""
        return self.enabled and session_over and isinstance(exc, SPEECH_FAILURES)

    async def fail(self, exc: Exception) -> None:
        """The session failed: nothing new starts, what is being said is played (within
        ``fallback_timeout_s``), then the dialogue ends ``SESSION_FAILED`` (the caller's
        words are kept for the pipeline meanwhile). The owner stopped awaiting answers."""
        if self._end.ending:
            return
        self._end.ending = self.handing_over = True
        log.warning("speech-to-speech session failed (%s): a pipeline takes over", describe(exc))
        caller_turn = self.unanswered.pending
        self.unanswered.failed()
        reply = self._messages.reply  # the model's reply in flight: its audio so far is played
        saying = self._interruptible.running()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.fallback_timeout_s):
                if saying:
                    await asyncio.wait(saying)
                if reply is not None:
                    await reply.wait_played()
        awaiting = self._messages.awaiting_reply
        error = exc.with_traceback(None)  # kept, its frames (the dialogue's) are not
        self._handover = Handover(error, b"", caller_turn, reply is not None, awaiting)
        self._end.end(SESSION_FAILED)

    def take(self) -> Handover | None:
        """What a pipeline goes on from, once the dialogue ended ``SESSION_FAILED``, with the
        caller's words kept until now (given up: later audio is the pipeline's)."""
        if self._handover is None:
            return None
        return dataclasses.replace(self._handover, unanswered=self.unanswered.take())
