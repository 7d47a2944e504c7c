"""A live call's secure keypad entry (``collect_secure_digits``): while it is open the call is
in secure mode.

In secure mode the caller's keys go to the entry (``pipeline/hearing/secure_digits.py``), never to
the dialogue (no barge-in, no ``Keypad:`` turn, nothing for the model or the transcript); the
call's recording and its live listeners get silence instead of both sides' audio, so in-band
tones are nowhere; and the dialogue hears silence, so no tone or spoken digit is transcribed.
Secure mode begins when the tool is called (keys pressed during the prompt count), and ends a
moment (``TAIL_S``) after the tool ``release``s it (its server answered), so the last tone's
frames still in flight stay muted; a key pressed after the entry ended and before then (a
terminator after an entry of full length) is swallowed, never a barge-in into the tool.

One entry at a time; its prompt is the tool's to say (the dialogue speaks it as the tool
starts, ``pipeline/dialogue/tool_calls.py``). The digits are handed to the tool that asked for
them and kept nowhere else.
"""

from __future__ import annotations

import asyncio
import time

from voicedock.pipeline.hearing.secure_digits import (
    SecureDigits,
    SecureDigitsCollector,
    SecureDigitsPlan,
)

TAIL_S = 0.5
BUSY = SecureDigits("", "closed", complete=False)


class SecureKeypad:
    def __init__(self) -> None:
        self._collector: SecureDigitsCollector | None = None
        self._entered: asyncio.Future[SecureDigits] | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Secure mode on the media's clock (``time.monotonic``, as the pacer's due times):
        # since when the open entry runs, and the windows of the entries before.
        self._since: float | None = None
        self._windows: list[tuple[float, float]] = []
        self._closed = False

    @property
    def active(self) -> bool:
        """An entry is open: the caller's keys are the entry's."""
        return self._collector is not None

    @property
    def secure(self) -> bool:
        """The call is in secure mode: from ``collect`` to ``release``."""
        return self._since is not None

    def muted(self, at: float | None = None) -> bool:
        """Secure mode at ``at`` (``time.monotonic``; default now): a frame heard then is
        silence to the recording, the listeners and the dialogue. A frame the pacer hands
        over late is judged by when it played."""
        moment = time.monotonic() if at is None else at
        if self._since is not None and moment >= self._since:
            return True
        return bool(self._windows) and any(start <= moment < end for start, end in self._windows)

    def press(self, key: str) -> bool:
        """A key the caller pressed: True when secure mode took it (the open entry, or none:
        the key is dropped; the dialogue must not see it), False outside secure mode."""
        collector = self._collector
        if collector is None:
            return self.muted()
        now = asyncio.get_running_loop().time()
        if (entry := collector.press(key, now)) is not None:
            self._finish(entry)
        else:
            self._arm(collector)
        return True

    async def collect(self, plan: SecureDigitsPlan, first_key_after_s: float = 0.0) -> SecureDigits:
        """Open an entry and return it once it ends (in secure mode already, or a call that
        is over: nothing collected, ``closed``); its first key is awaited
        ``first_key_after_s`` more (the prompt heard meanwhile). The call stays in secure
        mode until ``release``."""
        if self._since is not None or self._closed:
            return BUSY
        loop = asyncio.get_running_loop()
        collector = self._collector = SecureDigitsCollector(plan, loop.time())
        self._since = time.monotonic()
        entered: asyncio.Future[SecureDigits] = loop.create_future()
        self._entered = entered
        collector.wait_from(loop.time() + first_key_after_s)
        self._arm(collector)
        try:
            return await entered
        except BaseException:  # cancelled: the turn was interrupted, the call ends
            if not entered.done():
                self._finish(collector.close())
            self.release()
            raise

    def release(self) -> None:
        """Secure mode ends, ``TAIL_S`` from now (idempotent)."""
        if self._collector is not None:
            self._finish(self._collector.close())
        if self._since is not None:
            self._windows.append((self._since, time.monotonic() + TAIL_S))
            self._since = None

    def close(self) -> None:
        """The call is over: an open entry ends (``closed``), no other opens."""
        self._closed = True
        if self._collector is not None:
            self._finish(self._collector.close())

    def _arm(self, collector: SecureDigitsCollector) -> None:
        """The timer of the entry's deadline, (re)set."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if (deadline := collector.deadline) is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._due)

    def _due(self) -> None:
        self._timer = None
        collector = self._collector
        if collector is None:
            return
        if (entry := collector.expire(asyncio.get_running_loop().time())) is not None:
            self._finish(entry)
        else:
            self._arm(collector)

    def _finish(self, entry: SecureDigits) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._collector = None
        entered, self._entered = self._entered, None
        if entered is not None and not entered.done():
            entered.set_result(entry)
