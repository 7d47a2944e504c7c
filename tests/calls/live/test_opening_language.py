"""The language a call opens in: the dialled number's, else the first listed language whose
calling codes hold the far party's; none for a number that does not parse or matches none."""

from __future__ import annotations

import dataclasses

import pytest

from store.builders import make_call
from voicedock.calls.live.opening_language import (
    call_opening_language,
    greeted_in,
    opening_language,
    opens_in_listed,
)
from voicedock.domain.assistant_config import config_of
from voicedock.domain.records import Direction, PhoneNumber
from voicedock.pipeline.hearing.language import SpokenLanguage

pytestmark = pytest.mark.unit

CONFIG = config_of(
    {
        "first_message": "Hello.",
        "languages": [
            {"language": "de", "calling_codes": ["49", "43"]},
            {"language": "fr", "calling_codes": ["33", "1"]},
            {"language": "es", "calling_codes": ["1"]},
        ],
    }
)


@pytest.mark.parametrize(
    ("far", "dialled", "expected"),
    [
        ("+4930123456", None, "de"),
        ("+4315123456", None, "de"),
        ("+33612345678", None, "fr"),
        ("+12125550123", None, "fr"),  # the first language listing +1
        ("+31612345678", None, None),  # listed by none
        ("+31612345678", "de", "de"),  # the dialled number's language wins
        ("+4930123456", "en", "en"),  # even the assistant's own
        ("anonymous", None, None),
        (None, None, None),
    ],
)
def test_the_opening_language(far: str | None, dialled: str | None, expected: str | None) -> None:
    assert opening_language(CONFIG, far, dialled) == expected


def test_only_a_listed_language_changes_the_greeting() -> None:
    assert opens_in_listed(CONFIG, "de")
    assert not opens_in_listed(CONFIG, "en")
    assert not opens_in_listed(CONFIG, None)
    german = SpokenLanguage("de", "Answer in German.", first_message="Guten Tag.")
    assert greeted_in(CONFIG, german).first_message == "Guten Tag."
    assert greeted_in(CONFIG, SpokenLanguage("de", "Answer in German.")) is CONFIG
    assert greeted_in(CONFIG, None) is CONFIG
    refusal = config_of({"first_message": "No.", "hang_up_after_first_message": True})
    assert greeted_in(refusal, german) is refusal  # the organization's server's refusal


class _Numbers:
    """The organization's numbers, counting the lookups."""

    def __init__(self, number: PhoneNumber) -> None:
        self.number = number
        self.lookups = 0

    async def get_phone_number(self, organization_id: str | None, number_id: str) -> PhoneNumber:
        self.lookups += 1
        return self.number

    async def list_phone_numbers(self, organization_id: str) -> list[PhoneNumber]:
        return [self.number]


async def test_an_inbound_call_opens_in_its_numbers_language_only_for_an_assistant_listing_it() -> (
    None
):
    """The dialled number says German: a call whose assistant lists languages opens in it; one
    whose assistant lists none opens in its own, and its number is not even looked up."""
    number = PhoneNumber(
        id="num_1", organization_id="org_1", number="+15550001111", trunk="main", language="de"
    )
    numbers = _Numbers(number)
    inbound = dataclasses.replace(
        make_call("org_1", number_id="num_1"), direction=Direction.INBOUND, assistant_config=CONFIG
    )
    assert await call_opening_language(numbers, inbound) == "de"
    assert numbers.lookups == 1
    plain = dataclasses.replace(inbound, assistant_config=config_of({"first_message": "Hi."}))
    assert await call_opening_language(numbers, plain) is None
    assert numbers.lookups == 1
