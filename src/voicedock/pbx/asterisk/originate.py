"""Placing an outbound call on Asterisk: ARI ``POST /channels`` or AMI ``Originate``.

The call goes with our call id as the Asterisk channel id, so the PBX itself refuses a
duplicate, and straight into the ``voicedock`` Stasis app (ARI ``POST /channels``, or AMI
``Originate`` with ``Application: Stasis`` when ``originate_via = "ami"``). Everything is
validated before any I/O, and nothing goes out on a connection that reconcile has not
settled yet (``pbx/reconcile``): originating into an unregistered Stasis app answers the callee
and drops them, and a call placed on an Asterisk not yet checked for a restart would be taken
for one it lost.

AMI answers ``Originate`` (async) with an ``OriginateResponse``; when it fails before a channel
ever existed (busy, no answer, congestion on the first leg) no Hangup follows, so the failure
is turned into the call's HANGUP here (``_watch_ami_originate``), with the Q.850 cause its
``Reason`` stands for.
"""

from __future__ import annotations

import asyncio

from voicedock.domain.ids import is_call_id
from voicedock.errors import PbxError, PbxUnavailable
from voicedock.pbx.adapter import Spawn
from voicedock.pbx.asterisk.ami.client import AmiClient
from voicedock.pbx.asterisk.ami.messages import (
    AmiOriginateResponse,
    AmiValueError,
    originate_action,
    pjsip_dial_string,
)
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.base import OriginateRequest, PbxEvent, PbxEventKind, PbxEventSink
from voicedock.pbx.legs import CallRegistry
from voicedock.pbx.reconcile import Reconciler
from voicedock.validation import is_e164

__all__ = ["Originator"]

_REASON_CAUSE = {1: 16, 3: 19, 5: 17, 8: 34}  # AMI Originate Reason -> Q.850
# The dialplan context of test calls (dialplan/asterisk): Local/<token>@voicedock-test/n.
TEST_CONTEXT = "voicedock-test"
TEST_TOKEN_DIGITS = 32  # at most
TEST_RING_S = 30


class Originator:
    """The outbound calls of one ``AsteriskPbx``: through AMI when it has an AMI client."""

    def __init__(
        self,
        ari: AriClient,
        ami: AmiClient | None,
        calls: CallRegistry,
        reconciler: Reconciler,
        emit: PbxEventSink,
        spawn: Spawn,
        *,
        app: str,
        register_timeout: float,
    ) -> None:
        """``app``: the Stasis application the call goes into; ``register_timeout``: how long
        a call waits for a settled connection."""
        self._ari = ari
        self._ami = ami
        self._calls = calls
        self._reconciler = reconciler
        self._emit = emit
        self._spawn = spawn
        self._app = app
        self._register_timeout = register_timeout

    async def originate(self, request: OriginateRequest) -> None:
        # Validate everything before any I/O: nothing unsafe may reach the PBX.
        if not is_call_id(request.call_id):
            raise AmiValueError("call id must be a voicedock call id")
        if not is_e164(request.caller_id):
            raise AmiValueError("caller id must be E.164")
        endpoint = pjsip_dial_string(request.destination, request.trunk_endpoint)
        existing = self._calls.get(request.call_id)
        if existing is not None and not existing.ended:
            raise PbxError("a call with this id is already in progress")
        boot = await self._reconciler.wait_settled(self._register_timeout)
        if self._ami is not None:
            await self._through_ami(request, boot)
            return
        self._calls.add(request.call_id, request.call_id, "outbound").boot = boot
        try:
            await self._ari.originate(
                endpoint=endpoint,
                app_args=f"outbound,{request.call_id}",
                caller_id=request.caller_id,
                channel_id=request.call_id,
                timeout_seconds=request.timeout_seconds,
            )
        except AriHttpError:
            self._calls.forget(request.call_id)  # refused: no channel exists
            raise

    async def originate_test_call(self, leg_id: str, token: str) -> None:
        """A Local channel pair inside Asterisk (``RehearsalPbx``): its first half, channel
        ``leg_id``, goes into our app as an outbound leg (``outbound,<leg id>``) once the
        second half, running ``<token>@voicedock-test``, was answered there as an inbound
        caller. ``/n``: the pair is never optimized away, each half stays in its own bridge
        with its media leg. Always through ARI (``POST /channels``)."""
        if not is_call_id(leg_id):
            raise AmiValueError("leg id must be a voicedock call id")
        if not token.isdigit() or not token.isascii() or len(token) > TEST_TOKEN_DIGITS:
            raise AmiValueError("a test call's token is digits")
        existing = self._calls.get(leg_id)
        if existing is not None and not existing.ended:
            raise PbxError("a call with this id is already in progress")
        boot = await self._reconciler.wait_settled(self._register_timeout)
        self._calls.add(leg_id, leg_id, "outbound").boot = boot
        try:
            await self._ari.originate(
                endpoint=f"Local/{token}@{TEST_CONTEXT}/n",
                app_args=f"outbound,{leg_id}",
                caller_id="",
                channel_id=leg_id,
                timeout_seconds=TEST_RING_S,
                # Inherited by the second half: the application of this node, which the
                # dialplan hands it to (the test call runs on the node that asked for it).
                variables={"__VOICEDOCK_APP": self._app},
            )
        except AriHttpError:
            self._calls.forget(leg_id)
            raise

    async def _through_ami(self, request: OriginateRequest, boot: int) -> None:
        assert self._ami is not None
        headers = originate_action(request, app=self._app)
        self._calls.add(request.call_id, request.call_id, "outbound").boot = boot
        try:
            outcome = await self._ami.originate(headers)
        except PbxUnavailable:
            raise  # outcome unknown: the registry entry stays, reconcile settles it
        except PbxError:
            self._calls.forget(request.call_id)
            raise
        self._spawn(_watch_ami_originate(self._calls, self._emit, request, outcome))


async def _watch_ami_originate(
    calls: CallRegistry,
    emit: PbxEventSink,
    request: OriginateRequest,
    outcome: asyncio.Future[AmiOriginateResponse],
) -> None:
    try:
        async with asyncio.timeout(request.timeout_seconds + 15):
            response = await outcome
    except (PbxError, TimeoutError):
        return  # connection lost: reconcile decides
    if response.success:
        return
    # Give the Hangup event (with the SIP code) a moment to arrive first.
    await asyncio.sleep(0.5)
    if calls.mark_ended(request.call_id):
        cause = _REASON_CAUSE.get(response.reason or 0)
        await emit(
            PbxEvent(
                request.call_id,
                PbxEventKind.HANGUP,
                cause=cause,
                detail=f"originate-failed reason={response.reason}",
            )
        )
        calls.forget(request.call_id)
