"""Which trunks an organization may use: the operator's ``[[trunks]] organizations`` lists.

A trunk that lists organizations serves only those; one with no list serves the organizations
the operator put numbers on (``[[numbers]]`` or ``voicedock numbers``), since an organization
only ever calls through the trunk of one of its numbers. Configuration load and the
``voicedock numbers`` command refuse a number on a trunk that does not serve its organization;
the checks here catch what the database still holds from an earlier configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from voicedock.config import TrunkSettings
from voicedock.domain.records import PhoneNumber
from voicedock.organizations.config_mirror import stable_id


class TrunkAccess:
    """The configured trunks' organization lists, by organization id."""

    def __init__(self, trunks: Sequence[TrunkSettings]) -> None:
        self._lists = {
            t.name: frozenset(stable_id("organization", o) for o in t.organizations)
            for t in trunks
            if t.organizations
        }

    def serves(self, trunk: str, organization_id: str) -> bool:
        """Whether a number of the organization may call through ``trunk``."""
        allowed = self._lists.get(trunk)
        return allowed is None or organization_id in allowed

    def usable(self, trunks: Iterable[str], organization_id: str) -> frozenset[str]:
        """Those of ``trunks`` the organization's numbers may call through."""
        return frozenset(t for t in trunks if self.serves(t, organization_id))

    def visible(
        self, trunks: Iterable[str], organization_id: str, numbers: Iterable[PhoneNumber]
    ) -> frozenset[str]:
        """The trunks the organization sees (``GET /trunks``): those listing it, and those with
        no list that carry one of its ``numbers``."""
        holding = {n.trunk for n in numbers}
        return frozenset(
            t
            for t in trunks
            if (organization_id in self._lists[t] if t in self._lists else t in holding)
        )
