"""Call identifiers in the documented shapes.

Outbound: ``call-outbound-<random>``; inbound: ``call-_<caller>_<12 alphanumerics>`` (the seed
example is ``call-_+31623731537_XqaQxRRgAzYc``). The random parts come from ``secrets`` so ids
cannot be guessed; our id also becomes the PBX channel id, so it only holds characters every
PBX accepts in a channel id.
"""

from __future__ import annotations

import secrets
import string

from voicedock.validation import is_e164

_ALNUM = string.ascii_letters + string.digits


def random_alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def new_outbound_call_id() -> str:
    # Alphanumerics only (no '-'/'_' from token_urlsafe): channel ids end up in dial strings.
    return f"call-outbound-{random_alnum(16)}"


def room_name_for(call_id: str) -> str:
    """The documented ``room_name`` (``outbound-abc12345``): a short handle of the call."""
    return "outbound-" + call_id.rsplit("-", 1)[-1][:8].lower()


def new_inbound_call_id(caller: str | None) -> str:
    # A caller id that is not E.164 (anonymous, a SIP URI) never becomes part of our id.
    shown = caller if caller is not None and is_e164(caller) else "unknown"
    return f"call-_{shown}_{random_alnum(12)}"
