"""One node answers each parked inbound call: a claim made in FreeSWITCH itself.

Every node connected to FreeSWITCH hears every ``CHANNEL_PARK``. Before a node offers a parked
inbound call to its inbound handler it runs ``hash insert_ifempty/voicedock_inbound/<channel
uuid>/<node id>`` (mod_hash, part of a stock FreeSWITCH): FreeSWITCH inserts under a write lock,
so the first node gets ``+OK`` and every other ``-ERR key already exists``, and only the first
answers. The entry is deleted (``hash delete``) when the call ends or is refused. Without
mod_hash the claim cannot be made: the node answers as a single node does, and logs it.
"""

from __future__ import annotations

import logging

from voicedock.errors import PbxError
from voicedock.pbx.freeswitch.commands import require_token, require_uuid
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.errors import EslCommandError

log = logging.getLogger("voicedock.pbx.freeswitch.inbound_claim")

REALM = "voicedock_inbound"
_TAKEN = "already exists"


def build_claim(uuid: str, node_id: str) -> str:
    return f"hash insert_ifempty/{REALM}/{require_uuid(uuid)}/{require_token(node_id, 'node id')}"


def build_release(uuid: str) -> str:
    return f"hash delete/{REALM}/{require_uuid(uuid)}"


async def claim(esl: EslClient, uuid: str, node_id: str) -> bool:
    """True if this node is the one to answer the parked call ``uuid``."""
    try:
        await esl.api(build_claim(uuid, node_id))
    except EslCommandError as exc:
        if _TAKEN in str(exc):
            return False
        log.warning("inbound call not claimed (%s): answering it as a single node does", exc)
    return True


async def release(esl: EslClient, uuid: str) -> None:
    """Forget the claim of a call that ended (best effort: a leftover entry costs a few bytes)."""
    try:
        await esl.api(build_release(uuid))
    except PbxError as exc:
        log.debug("inbound claim not released (%s)", exc)


__all__ = ["REALM", "build_claim", "build_release", "claim", "release"]
