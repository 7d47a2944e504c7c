"""Which Asterisk channels and bridges belong to which voicedock call (pure bookkeeping).

PBX events arrive duplicated (ARI and AMI both report a hangup) and out of order, so every
transition is recorded here and reported at most once. The adapter owns the legs it created:
``owned_channels`` / ``bridges`` are what ``hangup`` deletes (Asterisk never hangs up a media
leg by itself). After a transfer the caller's leg is no longer ours to hang up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Keys are our call ids (``voicedock.domain.ids``). An inbound id is only a registry key: the
# PBX-side channel keeps the PBX's own id (on FreeSWITCH every channel does: the registry maps
# call id <-> channel).

__all__ = ["CallLegs", "CallRegistry"]


@dataclass(slots=True)
class CallLegs:
    call_id: str
    main_channel: str  # the remote party's channel (Asterisk outbound: == call_id)
    direction: str  # "outbound" | "inbound"
    created_at: float = field(default_factory=time.monotonic)
    # The PBX boot the leg was placed (or accepted) under: the adapter's count of restarts it
    # had seen. Restart detection ends only legs of an earlier boot.
    boot: int = 0
    # Our E.164 on the call (the caller id of outbound calls, the called number of inbound
    # ones) when the adapter needs it: FreeSWITCH shows it to a warm transfer's agent.
    our_number: str = ""
    media_channels: set[str] = field(default_factory=set)
    bridges: set[str] = field(default_factory=set)
    seen_on_pbx: bool = False
    ringing: bool = False
    answered: bool = False
    ended: bool = False
    transferred: bool = False

    def owned_channels(self) -> list[str]:
        channels = sorted(self.media_channels)
        if not self.transferred:
            channels.insert(0, self.main_channel)
        return channels


class CallRegistry:
    def __init__(self) -> None:
        self._calls: dict[str, CallLegs] = {}
        self._by_channel: dict[str, str] = {}

    def add(self, call_id: str, main_channel: str, direction: str) -> CallLegs:
        legs = self._calls.get(call_id)
        if legs is None:
            legs = CallLegs(call_id=call_id, main_channel=main_channel, direction=direction)
            self._calls[call_id] = legs
            self._by_channel[main_channel] = call_id
        return legs

    def get(self, call_id: str) -> CallLegs | None:
        return self._calls.get(call_id)

    def by_channel(self, channel_id: str) -> CallLegs | None:
        call_id = self._by_channel.get(channel_id)
        return None if call_id is None else self._calls.get(call_id)

    def attach_channel(self, call_id: str, channel_id: str) -> None:
        legs = self._calls[call_id]
        legs.media_channels.add(channel_id)
        self._by_channel[channel_id] = call_id

    def attach_bridge(self, call_id: str, bridge_id: str) -> None:
        self._calls[call_id].bridges.add(bridge_id)

    def detach_channel(self, channel_id: str) -> None:
        call_id = self._by_channel.get(channel_id)
        legs = None if call_id is None else self._calls.get(call_id)
        if legs is not None and channel_id in legs.media_channels:
            legs.media_channels.discard(channel_id)
            del self._by_channel[channel_id]

    def mark_ringing(self, call_id: str) -> bool:
        """True the first time only, and never after answer or end."""
        legs = self._calls.get(call_id)
        if legs is None or legs.ringing or legs.answered or legs.ended:
            return False
        legs.ringing = True
        return True

    def mark_answered(self, call_id: str) -> bool:
        legs = self._calls.get(call_id)
        if legs is None or legs.answered or legs.ended:
            return False
        legs.answered = True
        legs.seen_on_pbx = True
        return True

    def mark_ended(self, call_id: str) -> bool:
        legs = self._calls.get(call_id)
        if legs is None or legs.ended:
            return False
        legs.ended = True
        return True

    def live(self) -> list[CallLegs]:
        return [legs for legs in self._calls.values() if not legs.ended]

    def forget(self, call_id: str) -> None:
        legs = self._calls.pop(call_id, None)
        if legs is None:
            return
        for channel in (legs.main_channel, *legs.media_channels):
            if self._by_channel.get(channel) == call_id:
                del self._by_channel[channel]

    def __len__(self) -> int:
        return len(self._calls)
