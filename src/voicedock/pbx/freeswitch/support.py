"""Small pure pieces of the FreeSWITCH adapter: settings, events, causes, uptime.

* ``cause_of``: a FreeSWITCH hangup-cause name as the Q.850 code ``causes.error_for_unanswered``
  understands. FreeSWITCH's own non-Q.850 causes are placed where Asterisk would report the
  same situation: ``GATEWAY_DOWN`` (the sofia gateway is unregistered or failed its pings) is
  cause 27, destination out of order, so the call fails as ``unreachable`` like an Asterisk
  trunk that does not answer; ``RECOVERY_ON_TIMER_EXPIRE`` (SIP timer B, no response) is 18.
* ``parse_uptime``: the seconds in ``api status`` (``UP 0 years, 0 days, 1 hour, ...``), which
  tells a reconnect to the same FreeSWITCH from a restarted one (``BootClock``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Coroutine
from typing import Any

from voicedock.config import FreeswitchSettings
from voicedock.errors import PbxError
from voicedock.pbx.base import InboundCall
from voicedock.pbx.causes import FREESWITCH_CAUSES
from voicedock.pbx.freeswitch.esl import DEFAULT_EVENTS, EslClient, EslSettings
from voicedock.pbx.freeswitch.esl_wire import EslEvent
from voicedock.pbx.freeswitch.media import MEDIA_EVENT_SUBCLASSES

log = logging.getLogger("voicedock.pbx.freeswitch.pbx")

# CUSTOM must come last: the event command takes subclass names after it.
PBX_EVENTS = (*DEFAULT_EVENTS[:-1], "CHANNEL_PARK", DEFAULT_EVENTS[-1], *MEDIA_EVENT_SUBCLASSES)

# The Q.850 name sent with uuid_kill for each Pbx.hangup reason (unknown reasons: normal).
HANGUP_REASONS = {
    "normal": "NORMAL_CLEARING",
    "busy": "USER_BUSY",
    "no-answer": "NO_ANSWER",
    "rejected": "CALL_REJECTED",
    "congestion": "NORMAL_TEMPORARY_FAILURE",
    "timeout": "RECOVERY_ON_TIMER_EXPIRE",
    "shutdown": "SYSTEM_SHUTDOWN",
}

_EXTRA_CAUSES = {
    "GATEWAY_DOWN": 27,
    "RECOVERY_ON_TIMER_EXPIRE": 18,
    "SUBSCRIBER_ABSENT": 20,
    "NO_ROUTE_TRANSIT_NET": 2,
}
_UPTIME_UNITS = {
    "year": 365 * 86400.0,
    "day": 86400.0,
    "hour": 3600.0,
    "minute": 60.0,
    "second": 1.0,
    "millisecond": 0.001,
    "microsecond": 0.000001,
}
_UPTIME_PART = re.compile(r"(\d+) (year|day|hour|minute|second|millisecond|microsecond)s?\b")


def esl_settings_for(settings: FreeswitchSettings) -> EslSettings:
    """The ESL client settings; refuses the default password unless explicitly allowed."""
    return EslSettings(
        host=settings.esl_host,
        port=settings.esl_port,
        password=settings.esl_password,
        allow_default_password=settings.allow_default_password,
        events=PBX_EVENTS,
    )


def cause_of(name: str | None) -> int | None:
    if not name:
        return None
    name = name.strip()
    return FREESWITCH_CAUSES.get(name, _EXTRA_CAUSES.get(name))


def sip_status(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() else None


def parse_uptime(status: str) -> float | None:
    """Seconds since FreeSWITCH started, from the first line of ``api status``."""
    first = status.strip().splitlines()[0] if status.strip() else ""
    if not first.startswith("UP "):
        return None
    parts = _UPTIME_PART.findall(first)
    if not parts:
        return None
    return sum(int(count) * _UPTIME_UNITS[unit] for count, unit in parts)


class BootClock:
    """When FreeSWITCH started, from ``api status``: our clock minus its uptime. Known to lie
    between the uptime subtracted from the moment the command was sent and from the moment
    its reply was read (the round trip, however slow the event loop, never passes for a
    restart); a boot outside the last window (beyond ``tolerance``, for clock slew) is a
    restart, even of a FreeSWITCH that ran for only a few seconds."""

    def __init__(self, tolerance: float = 1.0) -> None:
        self.tolerance = tolerance
        self.window: tuple[float, float] | None = None  # earliest, latest boot

    async def check(self, esl: EslClient) -> bool:
        """Ask FreeSWITCH its uptime; True if it started again since the last check."""
        sent = time.monotonic()
        return self.restarted(await esl.api("status"), sent=sent)

    def restarted(self, status: str, *, sent: float, now: float | None = None) -> bool:
        """Record the ``api status`` output sent at ``sent`` and read at ``now``; True if it
        started again since the last one."""
        uptime = parse_uptime(status)
        if uptime is None:
            return False
        read = time.monotonic() if now is None else now
        window = (sent - uptime, read - uptime)
        previous, self.window = self.window, window
        if previous is None:
            return False
        return window[0] > previous[1] + self.tolerance or window[1] < previous[0] - self.tolerance


def parked_inbound_call(event: EslEvent, uid: str, dids: set[str]) -> InboundCall | None:
    """The ``CHANNEL_PARK`` of a call to one of our numbers, as an ``InboundCall``."""
    # The dialplan normalises the carrier's number to E.164 in voicedock_did.
    called = event.get("variable_voicedock_did") or event.get("Caller-Destination-Number")
    if not called or called not in dids:
        return None
    return InboundCall(uid, event.get("Caller-Caller-ID-Number") or "", called)


async def guarded(coro: Coroutine[Any, Any, Any]) -> None:
    """Run a background task of the adapter: a failure is logged, never propagated."""
    try:
        await coro
    except PbxError as exc:
        log.warning("background FreeSWITCH task failed: %s", exc)
    except Exception:
        log.exception("background FreeSWITCH task crashed")
