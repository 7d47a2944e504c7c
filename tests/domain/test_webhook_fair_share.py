"""``fair_share``: which due webhook deliveries a claim takes, within the caps per endpoint and
per organization, the least busy organization and endpoint first."""

from __future__ import annotations

import pytest

from voicedock.domain.webhooks import DeliveryCaps, Queued, fair_share

pytestmark = pytest.mark.unit


def backlog(organization: str, endpoint: str, count: int, start: int = 0) -> list[Queued]:
    return [Queued(f"{endpoint}-{n}", endpoint, organization) for n in range(start, start + count)]


def ids(picked: list[Queued]) -> list[str]:
    return [q.id for q in picked]


def test_another_organizations_first_delivery_goes_before_a_backlog() -> None:
    due = backlog("acme", "a1", 50) + backlog("globex", "g1", 1)
    picked = fair_share(due, [], DeliveryCaps(per_endpoint=0, per_organization=0), 2)
    assert ids(picked) == ["a1-0", "g1-0"]


def test_caps_count_what_is_in_flight_on_any_node() -> None:
    due = backlog("acme", "a1", 5, start=2) + backlog("acme", "a2", 5) + backlog("globex", "g1", 5)
    in_flight = backlog("acme", "a1", 2)  # leased by other claims
    caps = DeliveryCaps(per_endpoint=2, per_organization=3)
    picked = fair_share(due, in_flight, caps, 10)
    # a1 is at its cap; globex, the less busy, first: two (its endpoint's cap); then acme
    # has room for one more, on a2.
    assert ids(picked) == ["g1-0", "g1-1", "a2-0"]


def test_each_endpoints_deliveries_start_in_due_order() -> None:
    due = backlog("acme", "a1", 3) + backlog("acme", "a2", 3)
    due.sort(key=lambda q: q.id[-1])  # due order: a1-0, a2-0, a1-1, a2-1, ...
    picked = fair_share(due, [], DeliveryCaps(per_endpoint=3, per_organization=0), 6)
    for endpoint in ("a1", "a2"):
        assert [q.id for q in picked if q.endpoint_id == endpoint] == [
            f"{endpoint}-{n}" for n in range(3)
        ]


def test_the_least_busy_organization_gets_the_next_slot() -> None:
    due = backlog("acme", "a1", 3) + backlog("globex", "g1", 3) + backlog("initech", "i1", 3)
    in_flight = backlog("acme", "a9", 1) + backlog("globex", "g9", 2)
    picked = fair_share(due, in_flight, DeliveryCaps(per_endpoint=0, per_organization=0), 3)
    assert ids(picked) == ["i1-0", "a1-0", "i1-1"]


def test_nothing_over_the_limit_and_nothing_when_every_cap_is_reached() -> None:
    due = backlog("acme", "a1", 10)
    assert len(fair_share(due, [], DeliveryCaps(per_endpoint=0, per_organization=0), 4)) == 4
    assert fair_share(due, [], DeliveryCaps(), 0) == []
    full = backlog("acme", "a2", DeliveryCaps().per_organization)
    assert fair_share(due, full, DeliveryCaps(), 10) == []
