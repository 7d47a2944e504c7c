"""Bytes of the fake FreeSWITCH's Event Socket (``mod_event_socket.c``) and its call outcomes."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

# destination outcome → (SIP status, hangup cause, answered?)
OUTCOMES: dict[str, tuple[int, str, bool]] = {
    "answer": (200, "NORMAL_CLEARING", True),
    "busy": (486, "USER_BUSY", False),
    "no_answer": (480, "NO_ANSWER", False),
    # sofia maps a 503 to NORMAL_TEMPORARY_FAILURE (seen on the lab FreeSWITCH 1.11.1).
    "congestion": (503, "NORMAL_TEMPORARY_FAILURE", False),
    "rejected": (403, "CALL_REJECTED", False),
    "unallocated": (404, "UNALLOCATED_NUMBER", False),
}
CORE_UUID = "6f2f7a56-1f8b-4a61-9b7c-0d2f1c0c0001"
STATUS_TEXT = (
    "UP 0 years, 0 days, 0 hours, {minutes} minutes, {seconds} seconds, {milliseconds} "
    "milliseconds, {microseconds} microseconds\n"
    "FreeSWITCH (Version 1.11.1-release  64bit) is ready\n"
    "2 session(s) since startup\n0 session(s) - peak 1, last 5min 1 \n"
    "0 session(s) per Sec out of max 100, peak 2, last 5min 2 \n"
    "200 session(s) max\nmin idle cpu 0.00/27.50\nCurrent Stack Size/Max 240K/8192K\n"
)
# ``sofia/gateway/<gw>/<dest>``, or mod_loopback's ``loopback/<exten>[/<context>[/<dialplan>]]``
# (``channel_outgoing_channel`` splits the data on ``/`` only).
ORIGINATE_COMMAND = re.compile(
    r"originate \{(?P<vars>.*)\}"
    r"(?:sofia/gateway/(?P<gw>[^/ ]+)/(?P<dest>\S+)"
    r"|loopback/(?P<exten>[^/ ]+)(?:/(?P<context>[^/ ]*)(?:/(?P<dialplan>[^/ ]*))?)?)"
    r" (?P<app>.+)"
)


def split_unescaped(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` unless preceded by a backslash, then drop that escape (``\\,``)."""
    parts = re.split(r"(?<!\\)" + re.escape(sep), text)
    return [p.replace("\\" + sep, sep).replace("\\s", " ") for p in parts]


def packet(headers: Mapping[str, str], body: bytes = b"", *, length_first: bool = False) -> bytes:
    lines = [f"{k}: {v}" for k, v in headers.items()]
    if body:
        length = f"Content-Length: {len(body)}"
        lines.insert(0, length) if length_first else lines.append(length)
    return ("\n".join(lines) + "\n\n").encode() + body


def command_reply(text: str, **extra: str) -> bytes:
    return packet({"Content-Type": "command/reply", "Reply-Text": text, **extra})


def api_response(text: str) -> bytes:
    return packet({"Content-Type": "api/response"}, (text or "-ERR no reply\n").encode())


def json_event(headers: Mapping[str, str], body: str | None = None) -> bytes:
    data = dict(headers)
    if body is not None:
        data["_body"] = body
    return packet({"Content-Type": "text/event-json"}, json.dumps(data).encode(), length_first=True)


def disconnect_notice() -> bytes:
    return packet(
        {"Content-Type": "text/disconnect-notice"},
        b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n",
    )


@dataclass
class FakeChannel:
    uuid: str
    destination: str
    caller_id_number: str
    variables: dict[str, str]
    created: float = field(default_factory=time.time)
    answered: bool = False
    direction: str = "outbound"
    hangup_cause: str | None = None
    name: str = ""  # Channel-Name; "" = sofia/gateway/fake/<destination>
    context: str = ""  # the dialplan context a loopback leg runs in
    partner: str | None = None  # the other loopback leg (-a <-> -b)
    # Answered, its originate job not ended yet: a uuid_transfer now is overwritten by the
    # originate's &park() (mod_commands), which then parks it in the transfer's context.
    placing: bool = False
    lost_transfer_context: str | None = None

    @property
    def channel_name(self) -> str:
        return self.name or f"sofia/gateway/fake/{self.destination}"


def show_channels_json(channels: Collection[FakeChannel]) -> str:
    """``show channels as json`` (mod_commands): ``{"row_count": 0}`` has no ``rows``.

    As on the real FreeSWITCH, an outbound leg's ``cid_num`` is the party it called (the
    caller id we sent is ``callee_num``)."""
    if not channels:
        return '{"row_count": 0}\n'
    rows = [
        {
            "uuid": c.uuid,
            "direction": c.direction,
            "created_epoch": str(int(c.created)),
            "name": c.channel_name,
            "state": "CS_EXECUTE",
            "cid_num": c.destination if c.direction == "outbound" else c.caller_id_number,
            "callee_num": c.caller_id_number if c.direction == "outbound" else "",
            "dest": c.destination,
            "callstate": "ACTIVE" if c.answered else "RINGING",
        }
        for c in channels
    ]
    return json.dumps({"row_count": len(rows), "rows": rows}) + "\n"
