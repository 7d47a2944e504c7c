"""Where outbound calls and transfers may go (``[policy]``): the countries, the number types
refused, the ranges never called, the internal transfer targets (``calls/policy.py`` applies
it)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from voicedock.config.table_types import Table, matching, one_of
from voicedock.domain.number_plan import NUMBER_TYPES, is_region
from voicedock.errors import ConfigError

# Ranges never called, whatever the rest of the policy says: global services billed at
# satellite or premium rates, the usual targets of toll fraud (docs/transfers.md).
# `policy.extra_blocked_prefixes` adds to them; nothing removes them.
BUILT_IN_BLOCKED_PREFIXES = (
    "+808",  # international shared-cost service
    "+870",  # Inmarsat
    "+878",  # universal personal telecommunications (forwarded anywhere)
    "+881",  # global mobile satellite systems
    "+882",  # international networks
    "+883",  # international networks
    "+888",  # international telecommunications for disaster relief (OCHA)
    "+979",  # international premium rate service
)
# Number types (domain/number_plan.py) refused unless the operator changes the list: the caller
# pays a premium or part of the cost, or the number forwards anywhere.
DEFAULT_REFUSED_NUMBER_TYPES = ("premium_rate", "shared_cost", "personal_number")
EVERY_COUNTRY = "*"  # in policy.allowed_countries: numbers of every country may be called

Prefix = Annotated[str, matching(r"\+[0-9]{1,15}", "must be '+' followed by 1-15 digits")]


class PolicySettings(Table):
    """[policy]: destinations of outbound calls and transfers (docs/transfers.md)."""

    # Countries whose numbers may be called: ISO 3166-1 codes ("NL"; "001": global services
    # such as +800), or "*" for every country. Left out of the file: the countries of the
    # caller numbers in [[numbers]]; empty: no external number at all.
    allowed_countries: list[str] = msgspec.field(default_factory=list)
    refused_number_types: list[Annotated[str, one_of(NUMBER_TYPES)]] = msgspec.field(
        default_factory=lambda: list(DEFAULT_REFUSED_NUMBER_TYPES)
    )
    # Ranges refused on top of BUILT_IN_BLOCKED_PREFIXES (which always apply).
    extra_blocked_prefixes: list[Prefix] = msgspec.field(default_factory=list)
    # Transfer targets by name: glob patterns (calls/policy.py, docs/transfers.md).
    internal_targets: list[str] = msgspec.field(default_factory=list)

    def check(self) -> None:
        for i, country in enumerate(self.allowed_countries):
            if country != EVERY_COUNTRY and not is_region(country):
                raise ConfigError(
                    f"policy.allowed_countries[{i}]",
                    'an ISO 3166-1 country code in capitals ("NL"), "001" or "*"',
                )
