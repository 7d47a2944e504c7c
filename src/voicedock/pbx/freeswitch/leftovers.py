"""What a previous run of voicedock left on FreeSWITCH (after a crash or ``kill -9``): found
through ``voicedock_call_id``, cleared (``LeftoverPbx``), or an answered call taken over so
that it goes on (``ResumablePbx``).

The adapter's registry of a new run is empty, but every channel voicedock placed or answered
carries the call id as the channel variable ``voicedock_call_id``: ``live_call_ids`` maps the
channels it does not know back to their calls (and adopts them: ours to hang up again),
``hang_up_leftovers`` kills those of calls the engine gives up, ``adopt_call`` takes over one
the engine resumes (``calls/recovery``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

from voicedock.domain.ids import is_call_id, mask_call_id
from voicedock.pbx.freeswitch.commands import (
    CALL_ID_VARIABLE,
    UnsafeCommandValue,
    build_uuid_exists,
    build_uuid_getvar,
    build_uuid_kill,
    is_uuid,
)
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.errors import EslCommandError
from voicedock.pbx.freeswitch.esl.wire import ChannelInfo
from voicedock.pbx.freeswitch.media.hub import FreeswitchMediaHub
from voicedock.pbx.freeswitch.transfer import WarmTransfers
from voicedock.pbx.legs import CallLegs, CallRegistry
from voicedock.pbx.reconcile import ADOPT_SETTLE_WAIT, Reconciler
from voicedock.validation import is_e164

__all__ = ["FreeswitchLeftovers"]

log = logging.getLogger("voicedock.pbx.freeswitch.pbx")


class FreeswitchLeftovers:
    """A previous run's calls on one ``FreeswitchPbx``'s FreeSWITCH."""

    def __init__(
        self,
        esl: EslClient,
        calls: CallRegistry,
        reconciler: Reconciler,
        media: FreeswitchMediaHub,
        warm: WarmTransfers,
    ) -> None:
        self._esl = esl
        self._calls = calls
        self._reconciler = reconciler
        self._media = media
        self._warm = warm

    async def live_call_ids(self) -> set[str]:
        """Call ids of our calls FreeSWITCH still has, plus uuids of channels we do not know.

        A channel we do not know but that carries ``voicedock_call_id`` (ours, from before a
        restart of voicedock) is adopted: reported by its call id, and ours to hang up again.
        """
        live: set[str] = set()
        for channel in await self._esl.show_channels():
            legs = self._calls.by_channel(channel.uuid)
            if legs is None and not self._warm.is_agent_leg(channel.uuid):
                legs = await self._adopt(channel.uuid, answered=channel.call_state == "ACTIVE")
            live.add(legs.call_id if legs is not None else channel.uuid)
        # ``show channels`` reads the core database, which lags a new channel by up to ~0.5 s
        # (seen on the lab FreeSWITCH): a call answered a moment ago must not look gone.
        for legs in self._calls.live():
            known = legs.call_id in live or legs.transferred
            if not known and await self._exists(legs.main_channel):
                live.add(legs.call_id)
        return live

    async def _exists(self, channel_uuid: str) -> bool:
        try:
            return (await self._esl.api(build_uuid_exists(channel_uuid))).strip() == "true"
        except EslCommandError:
            return False

    async def _adopt(self, channel: str, *, answered: bool) -> CallLegs | None:
        try:
            call_id = (await self._esl.api(build_uuid_getvar(channel, CALL_ID_VARIABLE))).strip()
        except (EslCommandError, UnsafeCommandValue):
            return None  # gone meanwhile, or not a uuid FreeSWITCH would give
        if not is_call_id(call_id) or self._calls.get(call_id) is not None:
            return None  # another application's channel (``_undef_``), or a second leg
        direction = "inbound" if call_id.startswith("call-_") else "outbound"
        legs = self._calls.add(call_id, channel, direction)
        legs.seen_on_pbx = True
        legs.answered = answered
        log.info("call %s: channel adopted after a restart", mask_call_id(call_id))
        return legs

    async def hang_up_leftovers(self, calls: Mapping[str, str | None]) -> set[str]:
        """``LeftoverPbx``: ``uuid_kill`` every channel this run does not know that carries
        one of these call ids as ``voicedock_call_id`` (or is a stored inbound uuid), then
        check ``show channels``; returns the call ids of which a channel is still there."""
        mine = {channel.uuid: call_id for channel, call_id in await self._leftovers(calls)}
        for leg in mine:
            with contextlib.suppress(EslCommandError):  # "No such channel": gone already
                await self._esl.api(build_uuid_kill(leg, "NORMAL_CLEARING"))
        present = {channel.uuid for channel in await self._esl.show_channels()}
        return {call_id for leg, call_id in mine.items() if leg in present}

    async def _leftovers(self, calls: Mapping[str, str | None]) -> list[tuple[ChannelInfo, str]]:
        """The channels this run does not know of these calls (call id -> the stored uuid of
        the remote leg, if any), found by uuid or by ``voicedock_call_id``, with their call."""
        refs = {ref: call_id for call_id, ref in calls.items() if ref}
        found: list[tuple[ChannelInfo, str]] = []
        for channel in await self._esl.show_channels():
            if self._calls.by_channel(channel.uuid) is not None:
                continue  # a call of this run
            call_id = refs.get(channel.uuid)
            if call_id is None:
                try:
                    command = build_uuid_getvar(channel.uuid, CALL_ID_VARIABLE)
                    call_id = (await self._esl.api(command)).strip()
                except (EslCommandError, UnsafeCommandValue):
                    continue  # gone meanwhile, or no uuid of ours
            if call_id in calls and self._calls.get(call_id) is None:
                found.append((channel, call_id))
        return found

    async def adopt_call(self, call_id: str, remote_ref: str | None) -> bool:
        """``ResumablePbx``: take over an answered call a previous run left (``kill -9``).

        The remote leg (the stored uuid of an inbound call, else the channel carrying the call
        id as ``voicedock_call_id`` over a SIP gateway) must be up and answered; any other leg
        of the call (a warm-transfer agent) is killed, and the previous run's audio stream and
        playback on the remote leg are stopped, so ``call_media`` starts a fresh stream. On any
        failure nothing stays registered, so ``hang_up_leftovers`` can clear the call."""
        if self._calls.get(call_id) is not None or not is_call_id(call_id):
            return False
        if remote_ref is not None and not is_uuid(remote_ref):
            return False
        # Right after start-up the connection may still be coming up: the caller bounds the wait.
        boot = await self._reconciler.wait_settled(ADOPT_SETTLE_WAIT)
        found = await self._leftovers({call_id: remote_ref})
        remote = _remote_leg([channel for channel, _ in found], remote_ref)
        if remote is None or remote.call_state != "ACTIVE":
            return False
        for channel, _ in found:
            if channel.uuid != remote.uuid:
                with contextlib.suppress(EslCommandError):  # gone already
                    await self._esl.api(build_uuid_kill(channel.uuid, "NORMAL_CLEARING"))
        await self._media.clear_leftovers(remote.uuid)
        direction = "inbound" if remote_ref is not None else "outbound"
        legs = self._calls.add(call_id, remote.uuid, direction)
        legs.boot, legs.seen_on_pbx = boot, True
        self._calls.mark_answered(call_id)  # the engine has it in progress: not reported
        # Our number on the call (a warm transfer's caller id): as ``show channels`` lists it.
        number = remote.raw.get("callee_num" if direction == "outbound" else "dest", "")
        if is_e164(number):
            legs.our_number = number
        try:
            # Gone while we looked: its CHANNEL_HANGUP_COMPLETE went to nobody.
            present = await self._exists(remote.uuid)
        except BaseException:
            self._calls.forget(call_id)
            raise
        if not present:
            self._calls.forget(call_id)
            return False
        log.info("call %s: adopted from a previous run", mask_call_id(call_id))
        return True


def _remote_leg(channels: list[ChannelInfo], remote_ref: str | None) -> ChannelInfo | None:
    """The call's remote leg among its channels: the stored uuid (inbound), else the oldest
    SIP leg (our originate's; a warm transfer's agent legs are loopback ones and later)."""
    if remote_ref is not None:
        return next((channel for channel in channels if channel.uuid == remote_ref), None)
    sip = [channel for channel in channels if channel.raw.get("name", "").startswith("sofia/")]
    return min(sip, key=_created, default=None)


def _created(channel: ChannelInfo) -> int:
    epoch = channel.raw.get("created_epoch", "")
    return int(epoch) if epoch.isdigit() else 0
