"""Placing an outbound call on FreeSWITCH: ``bgapi originate`` over the Event Socket.

Every outbound leg gets its own ``uuid4()`` as ``origination_uuid`` (never the call id, which
is no UUID) and carries the call id as the channel variable ``voicedock_call_id``. The command
is built (and so validated) before any I/O, and never sent on a connection reconcile has not
checked for a restart yet (``pbx/reconcile``). The job's ``-ERR <CAUSE>`` ends the call with
that cause, a moment after, so that the ``CHANNEL_HANGUP_COMPLETE`` with the SIP status is
reported first when it comes; a lost socket leaves the outcome to reconcile: nothing is sent
again.

FreeSWITCH reports ``CHANNEL_ANSWER`` before the originate job ends: only then does it give the
answered leg its ``&park()`` (``originate_function`` in mod_commands sets the extension and
``CS_EXECUTE``), overwriting whatever a command sent in between had set. A transfer started at
the answer therefore waits for the job first (``placed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from voicedock.errors import PbxError
from voicedock.pbx.adapter import Spawn
from voicedock.pbx.base import TEST_CALL_PREFIX, OriginateRequest
from voicedock.pbx.causes import freeswitch_cause
from voicedock.pbx.freeswitch.commands import build_originate, build_originate_test_call
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.errors import (
    EslCommandError,
    EslCommandTimeout,
    EslConnectionLost,
)
from voicedock.pbx.freeswitch.esl.handles import BackgroundJob
from voicedock.pbx.freeswitch.hangups import FreeswitchHangups
from voicedock.pbx.freeswitch.restarts import SETTLE_TIMEOUT
from voicedock.pbx.legs import CallRegistry
from voicedock.pbx.reconcile import Reconciler

__all__ = ["FreeswitchOriginator"]

# After originate's `-ERR <CAUSE>`, wait this long for the HANGUP_COMPLETE with the SIP status.
_ORIGINATE_FAILURE_GRACE = 0.5
# How long a command that must follow the originate waits for its job (it ends at the answer).
_PLACED_TIMEOUT = 5.0


class FreeswitchOriginator:
    """The outbound calls of one ``FreeswitchPbx``."""

    def __init__(
        self,
        esl: EslClient,
        calls: CallRegistry,
        reconciler: Reconciler,
        hangups: FreeswitchHangups,
        spawn: Spawn,
    ) -> None:
        self._esl = esl
        self._calls = calls
        self._reconciler = reconciler
        self._hangups = hangups
        self._spawn = spawn
        self._jobs: dict[str, BackgroundJob] = {}  # call id -> its originate job, until it ends

    async def placed(self, call_id: str) -> None:
        """Returns once the originate job of ``call_id`` has ended (at once for a call not
        placed here, or whose job ended): the answered leg then runs its ``&park()``, and a
        ``uuid_transfer`` is no longer overwritten by it. Bounded; never raises."""
        job = self._jobs.get(call_id)
        if job is None:
            return
        with contextlib.suppress(PbxError, TimeoutError):
            async with asyncio.timeout(_PLACED_TIMEOUT):
                await job.result()

    async def originate(self, request: OriginateRequest) -> None:
        # Built (and so validated) before any I/O: nothing unsafe may reach the Event Socket.
        channel = str(uuid.uuid4())  # the leg's own uuid; the call id rides along as a variable
        command = build_originate(
            call_uuid=channel,
            call_id=request.call_id,
            destination=request.destination,
            caller_id_number=request.caller_id,
            gateway=request.trunk_endpoint,
            timeout_seconds=request.timeout_seconds,
        )
        if self._calls.get(request.call_id) is not None:  # ended calls are forgotten at once
            raise PbxError("a call with this id is already in progress")
        # Never on a connection not yet checked for a restart (it would be taken for lost).
        boot = await self._reconciler.wait_settled(SETTLE_TIMEOUT)
        if self._calls.get(request.call_id) is not None:
            raise PbxError("a call with this id is already in progress")
        legs = self._calls.add(request.call_id, channel, "outbound")
        legs.boot, legs.our_number = boot, request.caller_id
        try:
            job = await self._esl.bgapi(command)
        except (EslConnectionLost, EslCommandTimeout):
            raise  # outcome unknown: the registry entry stays, reconcile settles it
        except PbxError:
            self._calls.forget(request.call_id)  # refused or never sent: no channel exists
            raise
        self._jobs[request.call_id] = job
        self._spawn(self._watch(request.call_id, job))

    async def originate_test_call(self, leg_id: str, token: str, expected: set[str]) -> None:
        """A loopback pair inside FreeSWITCH (``RehearsalPbx``, ``commands``): its ``-a`` leg
        is ``leg_id``'s (reported as an outbound leg, ANSWERED when the ``-b`` leg was
        answered), its ``-b`` leg an inbound call to ``test-<token>``, which ``expected`` (our
        numbers, as the inbound side reads them) holds until the originate's job ends."""
        channel = str(uuid.uuid4())
        did = f"{TEST_CALL_PREFIX}{token}"
        command = build_originate_test_call(call_uuid=channel, did=did)
        if self._calls.get(leg_id) is not None:
            raise PbxError("a call with this id is already in progress")
        boot = await self._reconciler.wait_settled(SETTLE_TIMEOUT)
        self._calls.add(leg_id, channel, "outbound").boot = boot
        expected.add(did)
        try:
            job = await self._esl.bgapi(command)
        except PbxError:
            expected.discard(did)
            self._calls.forget(leg_id)
            raise
        self._jobs[leg_id] = job

        async def watched() -> None:
            try:
                await self._watch(leg_id, job)
            finally:
                expected.discard(did)

        self._spawn(watched())

    async def _watch(self, call_id: str, job: BackgroundJob) -> None:
        try:
            await job.result()
        except EslCommandError as exc:
            cause_name = exc.reply.removeprefix("-ERR").strip()
        except PbxError:
            return  # the socket broke (or we closed): reconcile decides, nothing is re-sent
        else:
            return  # "+OK <uuid>": CHANNEL_ANSWER reports it
        finally:
            self._jobs.pop(call_id, None)
        await asyncio.sleep(_ORIGINATE_FAILURE_GRACE)
        cause, detail = freeswitch_cause(cause_name), f"originate-failed {cause_name}"[:80]
        await self._hangups.ended(call_id, cause=cause, tech_cause=None, detail=detail)
