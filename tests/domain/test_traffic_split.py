"""A traffic split's choice: the same party always the same version, each version about its
weight's share of many parties, another assistant's split choosing on its own."""

from __future__ import annotations

import pytest

from voicedock.domain.traffic_split import TrafficShare, version_for

pytestmark = pytest.mark.unit

SPLIT = [TrafficShare(version=1, weight=75), TrafficShare(version=4, weight=25)]
PARTIES = [f"+3161{n:07d}" for n in range(4000)]


def test_a_party_always_gets_the_same_version() -> None:
    first = [version_for(SPLIT, "a1", party) for party in PARTIES]
    assert first == [version_for(SPLIT, "a1", party) for party in PARTIES]
    assert set(first) == {1, 4}


def test_each_version_gets_about_its_weight_s_share() -> None:
    chosen = [version_for(SPLIT, "a1", party) for party in PARTIES]
    assert 0.72 < chosen.count(1) / len(chosen) < 0.78


def test_another_assistant_chooses_on_its_own() -> None:
    mine = [version_for(SPLIT, "a1", party) for party in PARTIES[:400]]
    theirs = [version_for(SPLIT, "a2", party) for party in PARTIES[:400]]
    assert mine != theirs  # not one hash for every assistant: its callees are not all "A"
    assert version_for([TrafficShare(version=7, weight=1)] * 1, "a1", PARTIES[0]) == 7
