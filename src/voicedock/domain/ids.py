"""Our call id: one concept, one validator.

Outbound: ``call-outbound-<16 alphanumerics>``; inbound: ``call-_<caller>_<12 alphanumerics>``
(the seed example is ``call-_+31623731537_XqaQxRRgAzYc``). The random parts come from
``secrets`` so ids cannot be guessed; our id also becomes the PBX channel id, so it only holds
characters every PBX accepts in a channel id (``[A-Za-z0-9_+-]``, no separator of a dial
string, ESL command or variable block). ``is_call_id`` is the one check that a value is one of
ours: the API before a lookup, each PBX adapter before a call id reaches the wire. A PBX's own
channel ids and uuids are another concept, validated by that PBX's code.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import NewType, TypeGuard

from voicedock.validation import is_e164, mask_number

CallId = NewType("CallId", str)

_ALNUM = string.ascii_letters + string.digits
# The two shapes generated below. Nothing else is one of our call ids.
_OUTBOUND_CALL_ID = re.compile(r"call-outbound-[A-Za-z0-9]{16}")
_INBOUND_CALL_ID = re.compile(r"call-_(?P<caller>\+[1-9][0-9]{6,14}|unknown)_[A-Za-z0-9]{12}")


def random_alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def new_outbound_call_id() -> CallId:
    # Alphanumerics only (no '-'/'_' from token_urlsafe): channel ids end up in dial strings.
    return CallId(f"call-outbound-{random_alnum(16)}")


def new_inbound_call_id(caller: str | None) -> CallId:
    # A caller id that is not E.164 (anonymous, a SIP URI) never becomes part of our id.
    shown = caller if caller is not None and is_e164(caller) else "unknown"
    return CallId(f"call-_{shown}_{random_alnum(12)}")


def is_call_id(value: object) -> TypeGuard[CallId]:
    """One of our call ids (outbound or inbound shape, ASCII only)."""
    if not isinstance(value, str) or not value.isascii():
        return False
    return bool(_OUTBOUND_CALL_ID.fullmatch(value) or _INBOUND_CALL_ID.fullmatch(value))


def mask_call_id(call_id: str) -> str:
    """A call id safe for logs and PBX metadata: an inbound id's caller number is masked."""
    match = _INBOUND_CALL_ID.fullmatch(call_id) if call_id.isascii() else None
    if match is None or match["caller"] == "unknown":
        return call_id
    start, end = match.span("caller")
    return call_id[:start] + mask_number(match["caller"]) + call_id[end:]


def room_name_for(call_id: str) -> str:
    """The documented ``room_name`` (``outbound-abc12345``): a short handle of the call."""
    return "outbound-" + call_id.rsplit("-", 1)[-1][:8].lower()
