"""Why a call's dialogue ends, and ending it.

Both engines end a call the same way (``CallEnd.finish``): from the moment the end is decided
no new turn starts; an ``end-call`` (the command, or the model's ``end_call`` tool) lets what is
being said finish first, within ``end_call_grace_s``; then everything still said is cut (and
kept as heard), and the final message is spoken to its end: the command's, the silence
timeout's, or the fallback after a provider's failure, within ``fallback_timeout_s``. A call is
never left open and silent: the owner hangs up when ``wait`` returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection

from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.hearing.endpointing import SILENCE_TIMEOUT
from voicedock.pipeline.providers.base import ProviderError

log = logging.getLogger("voicedock.pipeline")

END_CALL_COMMAND = "end-call"
ASSISTANT_ENDED_CALL = "assistant-ended-call"  # the model called the end_call tool
REFUSED = "refused"  # the organization's server refused the inbound call (its message said)
PROVIDER_ERROR = "provider-error"
INTERNAL_ERROR = "internal-error"
CLOSED = "closed"  # the owner closed the dialogue (hang-up, transfer, shutdown)
# The model handed the call over to another member of its squad: this dialogue is over, the
# call goes on with the next (never a call's end reason).
HANDED_OVER = "handed-over"
# What a speech provider's failure looks like: the call ends "provider-error", a warning line.
SPEECH_FAILURES = (ProviderError, TimeoutError)
# Ends that let what is being said finish before the final message.
_GRACEFUL = (END_CALL_COMMAND, ASSISTANT_ENDED_CALL, HANDED_OVER)


def failure_reason(exc: Exception) -> str:
    """The end reason of a call whose task failed with ``exc``."""
    return PROVIDER_ERROR if isinstance(exc, SPEECH_FAILURES) else INTERNAL_ERROR


class CallEnd:
    """One dialogue's end: whether it is ending or closed, and why it ended."""

    def __init__(self, config: ConversationConfig) -> None:
        self._config = config
        self.ending = False  # the end is decided: no new turn, no new speech
        self.closed = False  # the owner closed the dialogue
        self.reason: str | None = None
        self._ended = asyncio.Event()

    @property
    def over(self) -> bool:
        """Ending or closed: inputs are ignored."""
        return self.ending or self.closed

    def close(self) -> bool:
        """The owner closes the dialogue: True the first time (then it is to wind down)."""
        if self.closed:
            return False
        self.closed = True
        return True

    def end(self, reason: str) -> None:
        """The call is over for ``reason`` (a reason given earlier stands)."""
        if self.reason is None:
            self.reason = reason
        self._ended.set()

    async def wait(self) -> str:
        """Wait until the call is over; returns the reason."""
        await self._ended.wait()
        assert self.reason is not None
        return self.reason

    async def finish(
        self,
        reason: str,
        final: str | None,
        *,
        pending: Collection[asyncio.Task[None]],
        quiet: Callable[[], Awaitable[object]],
        say: Callable[[str], Awaitable[None]],
        stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """End the call for ``reason``: after an ``end-call`` the ``pending`` speech may
        finish (bounded); ``stop`` whatever else still talks, ``quiet`` cuts what is being
        said, then ``say`` speaks the final message (the silence timeout's after one)."""
        self.ending = True
        if reason in _GRACEFUL and pending:
            await asyncio.wait(pending, timeout=self._config.end_call_grace_s)
        elif reason == SILENCE_TIMEOUT:
            final = self._config.silence_timeout_message
        if stop is not None:
            await stop()
        await quiet()
        if final:
            try:
                async with asyncio.timeout(self._config.fallback_timeout_s):
                    await say(final)
            except (ProviderError, TimeoutError) as exc:
                log.warning("final message not spoken: %s", type(exc).__name__)
                await quiet()
        self.reason = reason
        self._ended.set()
