"""Pure parser for ARI events: one websocket TEXT frame (JSON) in, a typed dataclass out; and
ARI's channel JSON (in events and REST answers alike) as one ``AriChannel``.

Only the events the adapter acts on get their own class; every other event type becomes
``OtherEvent`` so a new Asterisk version cannot break the reader. A frame that is not a JSON
object with a string ``type`` raises ``AriEventError``.

Causes: ``ChannelHangupRequest.cause`` with ``soft: true`` is a soft-hangup *flag* (32 =
explicit), not a Q.850 code. The reliable end-of-call cause is ``ChannelDestroyed.cause`` +
``tech_cause`` (the SIP code).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from voicedock.domain.json import JsonObject, json_object
from voicedock.errors import PbxError


class AriEventError(PbxError):
    """An ARI event frame that is not valid JSON or lacks the fields its type requires."""


@dataclass(frozen=True, slots=True)
class AriChannel:
    id: str
    name: str = ""
    state: str = ""
    caller_number: str = ""
    connected_number: str = ""
    dialplan_context: str = ""
    dialplan_exten: str = ""
    dialplan_app_name: str = ""
    dialplan_app_data: str = ""


@dataclass(frozen=True, slots=True)
class StasisStart:
    channel: AriChannel
    args: tuple[str, ...] = ()
    replace_channel_id: str | None = None
    application: str = ""


@dataclass(frozen=True, slots=True)
class StasisEnd:
    channel: AriChannel


@dataclass(frozen=True, slots=True)
class ChannelStateChange:
    channel: AriChannel


@dataclass(frozen=True, slots=True)
class DialProgress:
    """ARI ``Dial``: ``peer`` is the channel being dialled, ``dialstatus`` "" then RINGING…;
    ``caller`` is the dialling channel when there is one (a transferred caller's Dial())."""

    peer: AriChannel
    dialstatus: str = ""
    caller: AriChannel | None = None


@dataclass(frozen=True, slots=True)
class HangupRequest:
    channel: AriChannel
    cause: int | None = None
    tech_cause: int | None = None
    soft: bool = False


@dataclass(frozen=True, slots=True)
class ChannelDestroyed:
    channel: AriChannel
    cause: int | None = None
    cause_txt: str = ""
    tech_cause: int | None = None


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    channel: AriChannel
    digit: str
    duration_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ApplicationReplaced:
    application: str = ""


@dataclass(frozen=True, slots=True)
class OtherEvent:
    type: str
    raw: JsonObject = field(default_factory=dict, compare=False, repr=False)


AriEvent = (
    StasisStart
    | StasisEnd
    | ChannelStateChange
    | DialProgress
    | HangupRequest
    | ChannelDestroyed
    | DtmfReceived
    | ApplicationReplaced
    | OtherEvent
)


def parse_ari_event(frame: str | bytes) -> AriEvent:
    """Parse one ARI event frame. Raises ``AriEventError`` on malformed input."""
    try:
        data = json_object(json.loads(frame))
    except (ValueError, UnicodeDecodeError) as exc:
        raise AriEventError(f"ARI event is not JSON: {exc}") from None
    kind = data.get("type") if data is not None else None
    if data is None or not isinstance(kind, str):
        raise AriEventError("ARI event is not an object with a string 'type'")
    match kind:
        case "StasisStart":
            args = data.get("args") or []
            if not isinstance(args, list):
                raise AriEventError("StasisStart.args is not a list")
            replace = data.get("replace_channel")
            return StasisStart(
                channel=_channel(data, "channel"),
                args=tuple(str(a) for a in args),
                replace_channel_id=_channel(data, "replace_channel").id if replace else None,
                application=_str(data.get("application")),
            )
        case "StasisEnd":
            return StasisEnd(channel=_channel(data, "channel"))
        case "ChannelStateChange":
            return ChannelStateChange(channel=_channel(data, "channel"))
        case "Dial":
            status = _str(data.get("dialstatus"))
            caller = _channel(data, "caller") if isinstance(data.get("caller"), dict) else None
            return DialProgress(peer=_channel(data, "peer"), dialstatus=status, caller=caller)
        case "ChannelHangupRequest":
            return HangupRequest(
                channel=_channel(data, "channel"),
                cause=_int(data.get("cause")),
                tech_cause=_int(data.get("tech_cause")),
                soft=data.get("soft") is True,
            )
        case "ChannelDestroyed":
            return ChannelDestroyed(
                channel=_channel(data, "channel"),
                cause=_int(data.get("cause")),
                cause_txt=_str(data.get("cause_txt")),
                tech_cause=_int(data.get("tech_cause")),
            )
        case "ChannelDtmfReceived":
            digit = data.get("digit")
            if not isinstance(digit, str) or len(digit) != 1:
                raise AriEventError("ChannelDtmfReceived.digit is not one character")
            return DtmfReceived(
                channel=_channel(data, "channel"),
                digit=digit,
                duration_ms=_int(data.get("duration_ms")),
            )
        case "ApplicationReplaced":
            return ApplicationReplaced(application=_str(data.get("application")))
        case _:
            return OtherEvent(type=kind, raw=data)


def _channel(data: JsonObject, key: str) -> AriChannel:
    channel = channel_from_json(data.get(key))
    if channel is None:
        raise AriEventError(f"{data.get('type')}.{key} has no channel id")
    return channel


def channel_from_json(value: object) -> AriChannel | None:
    """ARI's channel JSON as an ``AriChannel``; ``None`` when it is not one (no string id)."""
    raw = json_object(value)
    channel_id = raw.get("id") if raw is not None else None
    if raw is None or not isinstance(channel_id, str) or not channel_id:
        return None
    caller = _obj(raw.get("caller"))
    connected = _obj(raw.get("connected"))
    dialplan = _obj(raw.get("dialplan"))
    return AriChannel(
        id=channel_id,
        name=_str(raw.get("name")),
        state=_str(raw.get("state")),
        caller_number=_str(caller.get("number")),
        connected_number=_str(connected.get("number")),
        dialplan_context=_str(dialplan.get("context")),
        dialplan_exten=_str(dialplan.get("exten")),
        dialplan_app_name=_str(dialplan.get("app_name")),
        dialplan_app_data=_str(dialplan.get("app_data")),
    )


def _obj(value: object) -> JsonObject:
    return json_object(value) or {}


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isascii():
        try:
            return int(value)
        except ValueError:
            return None
    return None
