"""Stable call errors from a PBX hangup: Q.850 cause plus the SIP status code.

Asterisk's AMI ``Reason`` (0/3/4) and ARI's ``Dial.dialstatus`` are too coarse (NOANSWER for
both 403 and 404), so the SIP code decides first and the Q.850 cause second. FreeSWITCH
hangup-cause names map through ``freeswitch_cause`` to the same codes; FreeSWITCH's own
non-Q.850 causes are placed where Asterisk would report the same situation: ``GATEWAY_DOWN``
(the sofia gateway is unregistered or failed its pings) is cause 27, destination out of order,
so the call fails as ``unreachable`` like an Asterisk trunk that does not answer;
``RECOVERY_ON_TIMER_EXPIRE`` (SIP timer B, no response) is 18.

An inbound caller gone before voicedock answered (its channel destroyed, or the answer finding
none) is reported as a HANGUP of detail ``CALLER_LEFT``, whatever cause the PBX gives (Asterisk:
Q.850 127 for a cancelled INVITE, or none): a call not answered, ``no-answer`` unless its cause
says more, never a PBX error.
"""

from __future__ import annotations

import enum


class CallError(enum.StrEnum):
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    REJECTED = "rejected"
    INVALID_NUMBER = "invalid-number"
    CONGESTION = "congestion"
    UNREACHABLE = "unreachable"
    PBX_ERROR = "pbx-error"
    PBX_RESTART = "pbx-restart"


# The detail of the HANGUP of an inbound caller who left before voicedock answered.
CALLER_LEFT = "caller-left"

_BY_SIP: dict[int, CallError] = {
    486: CallError.BUSY,
    600: CallError.BUSY,
    480: CallError.NO_ANSWER,
    487: CallError.NO_ANSWER,
    408: CallError.UNREACHABLE,
    403: CallError.REJECTED,
    603: CallError.REJECTED,
    401: CallError.REJECTED,
    407: CallError.REJECTED,
    404: CallError.INVALID_NUMBER,
    484: CallError.INVALID_NUMBER,
    485: CallError.INVALID_NUMBER,
    604: CallError.INVALID_NUMBER,
    503: CallError.CONGESTION,
    502: CallError.UNREACHABLE,
    504: CallError.UNREACHABLE,
}

_BY_Q850: dict[int, CallError] = {
    17: CallError.BUSY,
    18: CallError.UNREACHABLE,  # no user responding (SIP timer B)
    19: CallError.NO_ANSWER,
    21: CallError.REJECTED,
    1: CallError.INVALID_NUMBER,
    3: CallError.UNREACHABLE,
    22: CallError.INVALID_NUMBER,
    28: CallError.INVALID_NUMBER,
    27: CallError.UNREACHABLE,
    34: CallError.CONGESTION,
    38: CallError.UNREACHABLE,
    41: CallError.CONGESTION,
    42: CallError.CONGESTION,
}

FREESWITCH_CAUSES: dict[str, int] = {
    "NORMAL_CLEARING": 16,
    "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18,
    "NO_ANSWER": 19,
    "CALL_REJECTED": 21,
    "UNALLOCATED_NUMBER": 1,
    "NO_ROUTE_DESTINATION": 3,
    "INVALID_NUMBER_FORMAT": 28,
    "DESTINATION_OUT_OF_ORDER": 27,
    "NORMAL_CIRCUIT_CONGESTION": 34,
    "NETWORK_OUT_OF_ORDER": 38,
    "NORMAL_TEMPORARY_FAILURE": 41,
    "SWITCH_CONGESTION": 42,
    "ORIGINATOR_CANCEL": 487,
    "NORMAL_UNSPECIFIED": 31,
}
_FREESWITCH_OWN_CAUSES = {
    "GATEWAY_DOWN": 27,
    "RECOVERY_ON_TIMER_EXPIRE": 18,
    "SUBSCRIBER_ABSENT": 20,
    "NO_ROUTE_TRANSIT_NET": 2,
}


def freeswitch_cause(name: str | None) -> int | None:
    """A FreeSWITCH hangup-cause name as the Q.850 code ``error_for_unanswered`` understands."""
    if not name:
        return None
    name = name.strip()
    return FREESWITCH_CAUSES.get(name, _FREESWITCH_OWN_CAUSES.get(name))


def error_for_unanswered(
    cause: int | None, tech_cause: int | None, *, caller_left: bool = False
) -> CallError:
    """The error of a call that ended before it was answered; ``caller_left``: an inbound
    caller gone before the answer (``CALLER_LEFT``), ``no-answer`` unless a cause says more."""
    if tech_cause is not None and tech_cause in _BY_SIP:
        return _BY_SIP[tech_cause]
    if cause is not None and cause in _BY_Q850:
        return _BY_Q850[cause]
    if caller_left:
        return CallError.NO_ANSWER  # the caller went away while it rang
    if tech_cause is not None and 400 <= tech_cause < 500:
        return CallError.REJECTED
    if tech_cause is not None and tech_cause >= 500:
        return CallError.CONGESTION
    if cause == 16:
        # Normal clearing before answer: the far side went away while ringing.
        return CallError.NO_ANSWER
    return CallError.PBX_ERROR
