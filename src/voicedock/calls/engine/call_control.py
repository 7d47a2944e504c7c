"""A control command for a call this node serves (``POST /calls/{id}/control``, relayed by
``calls/nodes/command_relay.py`` from the node a request reached; a tool's transfer).

``end-call`` on a scheduled call cancels it (``ScheduledCalls.cancel``); any other command is
carried out by ``calls/commands.py`` on the live conversation or the PBX. A cancel of a call not
answered yet hangs its ringing leg up, and the call then ends ``cancelled`` (unless the HANGUP
that caused, or an answer that crossed it, already ended it).
"""

from __future__ import annotations

from voicedock.calls.commands import CommandRunner
from voicedock.calls.control import ControlCommand, EndCall
from voicedock.calls.engine.ground import EnginePart, Ground
from voicedock.calls.engine.scheduling import ScheduledCalls
from voicedock.calls.transitions import cancel


class CallControl(EnginePart):
    def __init__(self, ground: Ground, commands: CommandRunner, scheduled: ScheduledCalls) -> None:
        super().__init__(ground)
        self._commands = commands
        self._scheduled = scheduled

    async def run(self, org_id: str, call_id: str, command: ControlCommand) -> None:
        """Carry out ``command`` on the organization's call. Raises ``ApiError`` subclasses."""
        if isinstance(command, EndCall) and await self._scheduled.cancel(org_id, call_id):
            return
        if await self._commands.run(org_id, call_id, command):
            # A cancel: the ringing leg is hung up; end the call now (unless the HANGUP that
            # caused, or an answer that crossed it, already did).
            now = self._now()
            async with self._store.transaction() as tx:
                await self._timeline.transition(tx, call_id, lambda call: cancel(call, now), now)
