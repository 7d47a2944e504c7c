"""Pure AMI message code: safe action headers out, typed events in. No sockets.

Asterisk ends an AMI line at a bare LF and takes the first matching header, and panoramisk
writes values verbatim, so one CR/LF in any value smuggles a whole action. Every header this
module builds goes through ``check_ami_value`` (no control characters, ASCII only, length
capped); ``Variable`` values are additionally split by Asterisk on ``,``, so they may not hold
one. Dial strings are built here from validated parts only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from voicedock.domain.ids import is_call_id
from voicedock.errors import PbxError
from voicedock.pbx.base import OriginateRequest
from voicedock.validation import has_control_chars, is_e164, is_token

AmiHeaders = dict[str, str | list[str]]

# Asterisk reads at most 1024 bytes per line (``inbuf[1025]``), header name included.
_MAX_VALUE = 900
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class AmiValueError(PbxError, ValueError):
    """A value that would change the meaning of an AMI action; nothing was sent."""


def check_ami_value(name: str, value: str) -> str:
    """Return ``value`` if it is safe as an AMI header value, else raise ``AmiValueError``."""
    if not isinstance(value, str):
        raise AmiValueError(f"AMI {name}: value must be a string")
    if has_control_chars(value):
        raise AmiValueError(f"AMI {name}: control characters (CR, LF, NUL...) are not allowed")
    if not value.isascii():
        # Non-ASCII is never needed in what voicedock sends and hides look-alike tricks.
        raise AmiValueError(f"AMI {name}: only ASCII is allowed")
    if len(value) > _MAX_VALUE:
        raise AmiValueError(f"AMI {name}: value longer than {_MAX_VALUE} characters")
    return value


def check_variable(name: str, value: str) -> str:
    """One ``Variable: NAME=value`` entry; refuses names we did not choose and commas."""
    if _VARIABLE_NAME.fullmatch(name) is None:
        raise AmiValueError(f"AMI Variable name {name!r} is not a plain variable name")
    check_ami_value("Variable", value)
    if "," in value:
        raise AmiValueError("AMI Variable values may not contain ',' (Asterisk splits on it)")
    return f"{name}={value}"


def check_headers(headers: Mapping[str, str | list[str]]) -> AmiHeaders:
    """Validate every header name and value of an action before it reaches panoramisk."""
    checked: AmiHeaders = {}
    for name, value in headers.items():
        if not is_token(name) or "." in name:
            raise AmiValueError(f"AMI header name {name!r} is not allowed")
        if isinstance(value, list):
            checked[name] = [check_ami_value(name, v) for v in value]
        else:
            checked[name] = check_ami_value(name, value)
    return checked


def pjsip_dial_string(destination: str, endpoint: str) -> str:
    """``PJSIP/<E.164>@<endpoint>``; ``/ @ , &`` in either part would change the target."""
    if not is_e164(destination):
        raise AmiValueError("destination must be E.164")
    if not is_token(endpoint):
        raise AmiValueError("trunk endpoint must be a plain name")
    return f"PJSIP/{destination}@{endpoint}"


def originate_action(
    request: OriginateRequest, *, app: str, variables: Mapping[str, str] | None = None
) -> AmiHeaders:
    """An ``Originate`` of ``request`` into our Stasis app ``app``, always ``Async: true``
    (panoramisk needs it)."""
    call_id = request.call_id
    if not is_call_id(call_id):
        raise AmiValueError("call id must be one of ours")
    if not is_token(app):
        raise AmiValueError("ARI app name must be a plain token")
    if not is_e164(request.caller_id):
        raise AmiValueError("caller id must be E.164")
    if not 1 <= request.timeout_seconds <= 600:
        raise AmiValueError("timeout must be 1-600 seconds")
    headers: dict[str, str | list[str]] = {
        "Action": "Originate",
        "Channel": pjsip_dial_string(request.destination, request.trunk_endpoint),
        "Application": "Stasis",
        "Data": f"{app},outbound,{call_id}",
        "CallerID": request.caller_id,
        "ChannelId": call_id,
        "Timeout": str(request.timeout_seconds * 1000),
        "Async": "true",
    }
    if variables:
        headers["Variable"] = [check_variable(k, v) for k, v in variables.items()]
    return check_headers(headers)


# --- replies and events in -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AmiReply:
    """An action's reply (``Response: Success``…), as voicedock reads it."""

    success: bool
    message: str = ""
    ping: str = ""


_SUCCESS_RESPONSES = ("Success", "Follows", "Goodbye")


def parse_ami_reply(message: Mapping[str, object]) -> AmiReply:
    """An action's reply (a case-insensitive header mapping); an event counts as success, as
    panoramisk counts it."""
    success = "Event" in message or _first(message, "Response") in _SUCCESS_RESPONSES
    return AmiReply(success, _first(message, "Message"), _first(message, "Ping"))


@dataclass(frozen=True, slots=True)
class AmiHangup:
    uniqueid: str
    channel: str
    cause: int | None
    tech_cause: int | None


@dataclass(frozen=True, slots=True)
class AmiRinging:
    """``DialState RINGING`` or ``Newstate`` 5 for a channel."""

    uniqueid: str


@dataclass(frozen=True, slots=True)
class AmiOriginateResponse:
    uniqueid: str
    success: bool
    reason: int | None
    channel: str


@dataclass(frozen=True, slots=True)
class AmiFullyBooted:
    pass


@dataclass(frozen=True, slots=True)
class AmiOther:
    event: str


AmiEvent = AmiHangup | AmiRinging | AmiOriginateResponse | AmiFullyBooted | AmiOther


def parse_ami_event(message: Mapping[str, object]) -> AmiEvent:
    """Turn one AMI event (a case-insensitive header mapping) into a typed event."""
    event = _first(message, "Event")
    match event.lower():
        case "hangup":
            return AmiHangup(
                uniqueid=_first(message, "Uniqueid"),
                channel=_first(message, "Channel"),
                cause=_int(_first(message, "Cause")),
                tech_cause=_int(_first(message, "TechCause")),
            )
        case "dialstate" if _first(message, "DialStatus").upper() == "RINGING":
            # For an originate the dialled channel is the Dest* block.
            uid = _first(message, "DestUniqueid") or _first(message, "Uniqueid")
            return AmiRinging(uniqueid=uid)
        case "newstate" if _first(message, "ChannelState") == "5":
            return AmiRinging(uniqueid=_first(message, "Uniqueid"))
        case "originateresponse":
            return AmiOriginateResponse(
                uniqueid=_first(message, "Uniqueid"),
                success=_first(message, "Response").lower() == "success",
                reason=_int(_first(message, "Reason")),
                channel=_first(message, "Channel"),
            )
        case "fullybooted":
            return AmiFullyBooted()
        case _:
            return AmiOther(event=event)


def _first(message: Mapping[str, object], key: str) -> str:
    value = message.get(key)
    if value is None:
        value = message.get(key.lower())
    if isinstance(value, list):
        value = value[0] if value else ""
    return value.strip() if isinstance(value, str) else ""


def _int(value: str) -> int | None:
    if not value or not value.isascii():
        return None
    try:
        return int(value)
    except ValueError:
        return None
