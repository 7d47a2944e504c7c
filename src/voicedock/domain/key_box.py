"""Organizations' provider keys at rest: AES-256-GCM under the operator's key.

A provider key an organization stores (``/provider-keys``, bring your own key) is kept in the
database only as ``v1:`` + base64(nonce ‖ ciphertext ‖ tag), sealed with AES-GCM (the
``cryptography`` package) under the operator's 32-byte key (``[byok] key`` or ``key_file``). The
organization and key ids are the associated data, so a sealed value copied to another row or
organization does not open. The plaintext exists only in memory, when a call's provider uses it.
A value sealed under another operator key fails with ``KeyBoxError``, naming the likely cause.

``key_box`` is the operator's box as the ``[byok]`` settings give it, ``sealing_context`` what a
stored key is bound to: every floor that seals or opens a provider key uses both.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1:"
_NONCE = 12
KEY_BYTES = 32


class OperatorKeySource(Protocol):
    """Where the operator's key is configured (``config`` ``ByokSettings``)."""

    def operator_key(self) -> bytes | None: ...


class KeyBoxError(Exception):
    """A sealed provider key that does not open, or an operator key that is not one."""


def operator_key(text: str) -> bytes:
    """The operator's key from its text form: 32 bytes, base64 (standard or URL-safe)."""
    value = text.strip()
    try:
        raw = base64.urlsafe_b64decode(value.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        raise KeyBoxError("the BYOK key must be base64 (32 random bytes)") from None
    if len(raw) != KEY_BYTES:
        raise KeyBoxError(f"the BYOK key must be {KEY_BYTES} bytes, base64; got {len(raw)}")
    return raw


class KeyBox:
    """Seals and opens provider keys under one operator key."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise KeyBoxError(f"the BYOK key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        """``plaintext`` sealed, bound to ``context`` (which must be given again to open)."""
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return _VERSION + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, context: str) -> str:
        if not sealed.startswith(_VERSION):
            raise KeyBoxError("not a sealed provider key")
        try:
            raw = base64.b64decode(sealed[len(_VERSION) :], validate=True)
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode("utf-8"))
        except (InvalidTag, binascii.Error, ValueError):
            raise KeyBoxError(
                "a stored provider key does not open with the operator's BYOK key "
                "(was [byok] key changed?)"
            ) from None
        return plain.decode("utf-8")


def key_box(byok: OperatorKeySource) -> KeyBox | None:
    """The operator's key box (None: no key configured). Settings are checked at load."""
    key = byok.operator_key()
    return None if key is None else KeyBox(key)


def sealing_context(organization_id: str, key_id: str) -> str:
    """What a sealed key is bound to: copied to another row or organization, it does not open."""
    return f"provider-key:{organization_id}:{key_id}"


def open_provider_key(
    byok: OperatorKeySource, organization_id: str, key_id: str, sealed: str
) -> str:
    """An organization's provider key (``sealed``, its row ``key_id``) in clear;
    ``KeyBoxError`` when the operator has no key to open it with or it does not open."""
    box = key_box(byok)
    if box is None:
        raise KeyBoxError("no [byok] key is configured to open provider keys")
    return box.open(sealed, sealing_context(organization_id, key_id))
