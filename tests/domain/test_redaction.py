"""The redaction plan's detectors and the redactor: card numbers (Luhn), IBANs (their check
digits), e-mail addresses, phone numbers, dates of birth, each written or spoken as a recognizer
writes it; an organization's own patterns run by RE2, in linear time."""

from __future__ import annotations

import time

import pytest

from voicedock.domain.redaction import CATEGORIES, Redactor
from voicedock.domain.redaction.detectors import iban_valid, luhn_valid
from voicedock.domain.redaction.spoken import written

pytestmark = pytest.mark.unit

EVERYTHING = Redactor(CATEGORIES)


@pytest.mark.parametrize(
    "digits", ["4111111111111111", "4539148803436467", "5555555555554444", "378282246310005"]
)
def test_luhn_accepts_valid_card_numbers(digits: str) -> None:
    assert luhn_valid(digits)


@pytest.mark.parametrize("digits", ["4111111111111112", "4539148803436468", "1234567812345678"])
def test_luhn_refuses_a_wrong_check_digit(digits: str) -> None:
    assert not luhn_valid(digits)


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("My card is 4111 1111 1111 1111, thanks.", "My card is [card_number], thanks."),
        ("card 4539-1488-0343-6467 please", "card [card_number] please"),
        ("amex 378282246310005.", "amex [card_number]."),
        # The recognizer ended a sentence where the caller paused between two groups.
        (
            "My card number is 4539. 1488 0343 6467 you can",
            "My card number is [card_number] you can",
        ),
        (
            "it is four five three nine, one four eight eight, zero three four three, six four "
            "six seven okay",
            "it is [card_number] okay",
        ),
        # A card number said with its expiry after it: the card's digits, not the expiry's.
        ("4111 1111 1111 1111 12 28", "[card_number] 12 28"),
    ],
)
def test_card_numbers_written_or_spoken_are_redacted(said: str, kept: str) -> None:
    assert Redactor(["card_number"]).redact(said) == kept


def test_a_card_number_in_a_long_run_of_spoken_digits_is_found() -> None:
    said = "one two " * 50 + "four five three nine one four eight eight zero three four three "
    said += "six four six seven " + "nine " * 50
    redacted = Redactor(["card_number"]).redact(said)
    assert "[card_number]" in redacted
    assert "four five three nine" not in redacted


@pytest.mark.parametrize(
    "said",
    [
        "my card is 4111 1111 1111 1112",  # Luhn fails
        "order 123456789012",  # 12 digits
        "the invoice 1234 5678 9012 3456 7890 1234",  # 24 digits, no valid window
    ],
)
def test_digit_runs_that_are_no_card_number_stay(said: str) -> None:
    assert Redactor(["card_number"]).redact(said) == said


def test_iban_check_digits_and_length() -> None:
    assert iban_valid("DE89370400440532013000")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("DE89370400440532013001")  # a changed digit
    assert not iban_valid("DE8937040044053201300")  # one short of Germany's 22


def test_ibans_written_with_or_without_spaces_are_redacted() -> None:
    redactor = Redactor(["iban"])
    assert redactor.redact("IBAN DE89 3704 0044 0532 0130 00 and") == "IBAN [iban] and"
    assert redactor.redact("to GB82WEST12345698765432.") == "to [iban]."
    assert redactor.redact("DE89 3704 0044 0532 0130 01") == "DE89 3704 0044 0532 0130 01"


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("mail jane.doe@example.com now", "mail [email] now"),
        ("it is john at gmail dot com", "it is [email]"),
        ("John dot Smith at Example dot co dot uk.", "[email]."),
        ("email me at jane.doe at example.com.", "email me at [email]."),
        ("I am at home. See you at five.", "I am at home. See you at five."),
        ("it is jane.doatexample.com.", "it is [email]."),  # the "at" run into the words
        ("see the format.com site", "see the format.com site"),
    ],
)
def test_emails_written_or_spoken_are_redacted(said: str, kept: str) -> None:
    assert Redactor(["email"]).redact(said) == kept


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("call 415 555 0132 tomorrow", "call [phone_number] tomorrow"),
        ("or +44 20 7946 0958.", "or [phone_number]."),
        ("four one five, five five five, zero one three two", "[phone_number]"),
    ],
)
def test_phone_numbers_are_redacted(said: str, kept: str) -> None:
    assert Redactor(["phone_number"]).redact(said) == kept


def test_a_phone_number_is_read_in_the_plans_region() -> None:
    said = "ring 030 901820"  # a Berlin number, without its country code
    assert Redactor(["phone_number"], region="DE").redact(said) == "ring [phone_number]"


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("born 04/07/1985.", "born [date_of_birth]."),
        ("born 1985-07-04", "born [date_of_birth]"),
        ("on July 4, 1985 ok", "on [date_of_birth] ok"),
        ("the 4th of July 1985", "[date_of_birth]"),
        ("born on the fourth of July, nineteen eighty five.", "born on [date_of_birth]."),
        ("the twenty first of March two thousand and three", "[date_of_birth]"),
        ("see you on the 4th of July", "see you on the 4th of July"),  # no year: no birth date
    ],
)
def test_dates_of_birth_written_or_spoken_are_redacted(said: str, kept: str) -> None:
    assert Redactor(["date_of_birth"]).redact(said) == kept


def test_only_the_plans_categories_are_redacted() -> None:
    said = "card 4111 1111 1111 1111, mail j@example.com"
    assert Redactor(["email"]).redact(said) == "card 4111 1111 1111 1111, mail [email]"
    assert Redactor([]).redact(said) == said


def test_overlapping_matches_become_one_placeholder() -> None:
    said = "4111 1111 1111 1111"
    assert EVERYTHING.redact(said) == "[card_number]"


def test_custom_patterns_name_their_placeholder_and_are_case_insensitive() -> None:
    redactor = Redactor([], [("member_id", r"mem-\d{6}")])
    assert redactor.redact("my id is MEM-123456.") == "my id is [member_id]."


def test_custom_patterns_read_spoken_digits() -> None:
    redactor = Redactor([], [("pin", r"\b\d \d \d \d\b")])
    assert redactor.redact("my pin is one two three four ok") == "my pin is [pin] ok"


def test_a_pattern_catastrophic_for_backtracking_runs_in_linear_time() -> None:
    redactor = Redactor([], [("evil", r"(a+)+$")])
    text = "a" * 10_000 + "b"  # Python's re takes exponential time on this
    started = time.perf_counter()
    assert redactor.redact(text) == text
    assert time.perf_counter() - started < 2.0


def test_a_pattern_re2_refuses_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"RE2|invalid|backreference|look"):
        Redactor([], [("again", r"(a)\1")])


def test_spoken_forms_map_back_to_the_words_said() -> None:
    spoken = written("email jane at example dot com please")
    assert spoken.text == "email jane@example.com please"
    start = spoken.text.index("jane")
    assert spoken.original(start, start + len("jane@example.com")) == (6, 29)


def test_a_long_text_is_never_let_through_unread() -> None:
    text = "x " * 15_000 + "4111 1111 1111 1111"
    redacted = EVERYTHING.redact(text)
    assert "4111" not in redacted
    assert redacted.endswith("[redacted]")


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("my BSN is 111222333.", "my BSN is [national_id]."),  # NL, 11-proof
        ("it is one one one two two two three three three ok", "it is [national_id] ok"),
        ("Steuer-ID 36574261809", "Steuer-ID [national_id]"),  # DE
        ("social 536-90-4399 thanks", "social [national_id] thanks"),  # US
        ("rijksregister 85073003328", "rijksregister [national_id]"),  # BE
        ("NIR 2 95 10 99 126 111 93", "NIR [national_id]"),  # FR
        ("my NI number is JG 10 37 59 A.", "my NI number is [national_id]."),  # GB
        ("DNI 54362315-K", "DNI [national_id]"),  # ES
        ("NIE X2482300W", "NIE [national_id]"),
        ("codice RCCMNL83S18D969H", "codice [national_id]"),  # IT
    ],
)
def test_national_ids_written_or_spoken_are_redacted(said: str, kept: str) -> None:
    assert Redactor(["national_id"]).redact(said) == kept


@pytest.mark.parametrize(
    "said",
    [
        "Steuer-ID 36574261808",  # check digit wrong
        "DNI 54362315-A",  # check letter wrong
        "NI number BG 10 37 59 A",  # a prefix never issued
        "order 12 34",
    ],
)
def test_national_ids_whose_checks_fail_stay(said: str) -> None:
    assert Redactor(["national_id"]).redact(said) == said


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("I live at 221B Baker Street, London NW1 6XE.", "I live at [postal_address]."),
        (
            "it is 1600 Pennsylvania Avenue NW, Washington, DC 20500 ok",
            "it is [postal_address] ok",
        ),
        ("at two two one B Baker Street please", "at [postal_address] please"),
        ("send it to 350 Fifth Avenue, Suite 200.", "send it to [postal_address]."),
        ("Keizersgracht 123, 1015 CJ Amsterdam.", "[postal_address]."),
        (
            "at Keizersgracht one two three, one zero one five C J Amsterdam",
            "at [postal_address]",
        ),
        ("Hauptstraße 5a, 10115 Berlin", "[postal_address]"),
        ("wir wohnen Berliner Straße 12 seit", "wir wohnen [postal_address] seit"),
        ("my postcode is SW1A 2AA thanks", "my postcode is [postal_address] thanks"),
        ("postcode S W one A two A A", "postcode [postal_address]"),
        ("the zip code is six two seven oh four", "the zip code is [postal_address]"),
        ("Springfield, IL 62704", "Springfield, [postal_address]"),
        ("P.O. Box 123 please", "[postal_address] please"),
    ],
)
def test_postal_addresses_written_or_spoken_are_redacted(said: str, kept: str) -> None:
    assert Redactor(["postal_address"]).redact(said) == kept


@pytest.mark.parametrize(
    "said",
    [
        "I need 2 things on my way",
        "I walked 3 blocks down Main Street",
        "in 2024 we moved house",
        "see you on the 4th of July",
    ],
)
def test_sentences_with_numbers_and_street_words_are_no_address(said: str) -> None:
    assert Redactor(["postal_address"]).redact(said) == said


def test_the_built_in_detectors_are_linear_on_long_adversarial_text() -> None:
    """Each takes tens of milliseconds; a pattern quadratic in a word takes a minute."""
    texts = [
        "Aaaa " * 4_000,
        "A-" * 10_000,  # a word of many parts is one word, not 10,000 starts
        "A'" * 10_000,
        "A1-" * 6_000,
        "1 " * 10_000,
        "A" * 20_000,
        ("Bakerstraat " * 3 + "x ") * 1_000,
        ("12 Baker Baker Baker " * 1_000),
    ]
    started = time.perf_counter()
    for text in texts:
        EVERYTHING.redact(text)
    assert time.perf_counter() - started < 10.0


def test_a_card_number_said_across_messages_is_found_in_each_part() -> None:
    """One card rule (Luhn checked) over a speaker's messages read as one text."""
    plan = Redactor(["card_number"])
    assert plan.goes_on("my card is 4111 1111.")
    assert plan.goes_on("four one one one")
    assert not plan.goes_on("my card is [card_number]")
    assert not Redactor(["email"]).goes_on("4111 1111")
    # What no card begins with, said last, is not held: a year, a price, an age.
    assert not plan.goes_on("my date of birth is the fourth of July, nineteen eighty five.")
    assert not plan.goes_on("it was 1985")
    assert not plan.goes_on("I am 45")
    assert plan.goes_on("it is 2221 0000")  # Mastercard's 2-series
    # A middle part goes on where the parts before it began a card.
    assert plan.goes_on("my card is 4111 1111 1111")
    assert not plan.goes_on("1111 1111")
    texts, cards = plan.across(["my card is 4111 1111.", "1111 1111 thanks"])
    assert texts == ["my card is [card_number].", "[card_number] thanks"]
    assert cards == ["4111111111111111"]
    assert plan.across(["order 4111 1111", "1234 5678"]) == (["order 4111 1111", "1234 5678"], [])
    assert plan.without_parts("you said 4111 1111?", cards) == "you said [card_number]?"
    assert plan.without_parts("room 1234, at 10", cards) == "room 1234, at 10"
