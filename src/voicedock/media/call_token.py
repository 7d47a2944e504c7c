"""The per-call secret a PBX's media connection to voicedock presents.

Where the PBX dials voicedock for a call's audio (FreeSWITCH's audio-stream module; Asterisk's
websocket_client in client mode), anyone who can reach that port could otherwise name a call
that is waiting for its media and take its audio in both directions. Each expected connection
gets a fresh random token that voicedock hands the PBX over its authenticated control channel
(ESL, ARI) and compares, in constant time, with what the connection presents.
"""

from __future__ import annotations

import hmac
import secrets

TOKEN_BYTES = 18  # 144 random bits: 24 URL-safe characters


def new_call_token() -> str:
    """A fresh unguessable token, URL- and channel-variable-safe ``[A-Za-z0-9_-]``."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_matches(expected: str, presented: str) -> bool:
    """Whether ``presented`` is ``expected``, in constant time (no empty token matches)."""
    return bool(expected) and hmac.compare_digest(expected.encode(), presented.encode())
