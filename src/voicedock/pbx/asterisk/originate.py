"""The outcome of an AMI ``Originate``: a failure the PBX reports without any Hangup event.

AMI answers ``Originate`` (async) with an ``OriginateResponse``; when it fails before a channel
ever existed (busy, no answer, congestion on the first leg) no Hangup follows, so the failure
is turned into the call's HANGUP here, with the Q.850 cause its ``Reason`` stands for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from voicedock.errors import PbxError
from voicedock.pbx.asterisk.ami.messages import AmiOriginateResponse
from voicedock.pbx.base import OriginateRequest, PbxEvent, PbxEventKind
from voicedock.pbx.legs import CallRegistry

REASON_CAUSE = {1: 16, 3: 19, 5: 17, 8: 34}  # AMI Originate Reason -> Q.850


async def watch_ami_originate(
    calls: CallRegistry,
    emit: Callable[[PbxEvent], Awaitable[None]],
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
        cause = REASON_CAUSE.get(response.reason or 0)
        await emit(
            PbxEvent(
                request.call_id,
                PbxEventKind.HANGUP,
                cause=cause,
                detail=f"originate-failed reason={response.reason}",
            )
        )
        calls.forget(request.call_id)
