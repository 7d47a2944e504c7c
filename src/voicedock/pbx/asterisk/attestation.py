"""An inbound caller's STIR/SHAKEN attestation on Asterisk: the SIP headers of its INVITE, read
through ARI (``PJSIP_HEADER(read,<name>)``) before the engine is offered the call.

``Identity`` carries the carrier's PASSporT; ``P-Asserted-Identity`` (else ``From``) its
``verstat`` parameter. A header that is absent, or a channel that is not PJSIP, reads as
absent (Asterisk answers the read with an error): the call goes on without an attestation.
What the headers say is parsed by ``domain.attestation`` (strict, bounded); no signature is
verified.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from voicedock.domain.attestation import CallerAttestation, caller_attestation
from voicedock.errors import PbxError
from voicedock.pbx.asterisk.ari.client import AriClient

HEADERS = ("Identity", "P-Asserted-Identity", "From")


async def read_attestation(ari: AriClient, channel_id: str) -> CallerAttestation | None:
    """The attestation in the caller's INVITE (None: none, or not readable)."""
    identity, asserted, sent_from = await asyncio.gather(
        *(_header(ari, channel_id, name) for name in HEADERS)
    )
    return caller_attestation(identity, asserted, sent_from)


async def _header(ari: AriClient, channel_id: str, name: str) -> str | None:
    params = {"variable": f"PJSIP_HEADER(read,{name})"}
    try:
        reply = await ari.request(
            "GET", f"/channels/{quote(channel_id, safe='')}/variable", params=params
        )
    except PbxError:  # absent, not a PJSIP channel, or Asterisk would not say
        return None
    value = reply.get("value") if isinstance(reply, dict) else None
    return value if isinstance(value, str) and value else None
