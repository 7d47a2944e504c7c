"""An assistant's traffic split: the share of its calls each of its versions takes (A/B). A
call's version is chosen by the other party's number, so that a party is always given the same
version while the split stays as it is (docs/assistant-versions.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec

from voicedock.errors import BadRequest

SHARES = (2, 10)  # versions a split names
WEIGHT = (1, 100)  # a version's weight: its share is its weight over the split's total


class TrafficShare(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    weight: int


def version_for(shares: Sequence[TrafficShare], assistant_id: str, party: str) -> int:
    """The version of ``shares`` that a call of the assistant with ``party`` runs: the same
    for the same party, each version for its weight's share of the parties."""
    total = sum(share.weight for share in shares)
    digest = hashlib.sha256(f"{assistant_id}\n{party}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for share in shares:
        if point < share.weight:
            return share.version
        point -= share.weight
    raise ValueError("a split of no weight")


def each_version_once(versions: Sequence[int], field: str) -> None:
    """A split names each version at most once: 400 ``Duplicate version`` naming ``field``
    otherwise (the assistant's ``versions``, a campaign's or a number's ``traffic_split``)."""
    if len(set(versions)) != len(versions):
        raise BadRequest(f"{field}: each version at most once", error="Duplicate version")
