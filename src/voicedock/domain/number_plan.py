"""Where an E.164 number leads, from the numbering plans of libphonenumber (the maintained
``phonenumbers`` package): whether the number can exist (the right length, an assigned range),
the country it belongs to and its type (mobile, fixed line, premium rate...).

The country is the number's own, not its calling code's: ``+1 876…`` is Jamaica (``JM``), not
the United States, and ``+44 1534…`` is Jersey (``JE``). Numbers of global services (``+800``
international freephone, ``+882``/``+883`` international networks, ``+881`` satellite...) have
no country: their region is ``GLOBAL`` (libphonenumber's ``001``).
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, timezone

GLOBAL = "001"  # the region of non-geographic numbers (+800, +808, +870, +88x, +979)

# The number types, by the names the configuration uses (``policy.refused_number_types``).
NUMBER_TYPES: dict[str, int] = {
    "fixed_line": PhoneNumberType.FIXED_LINE,
    "mobile": PhoneNumberType.MOBILE,
    "fixed_line_or_mobile": PhoneNumberType.FIXED_LINE_OR_MOBILE,  # e.g. US, CA: not told apart
    "toll_free": PhoneNumberType.TOLL_FREE,
    "premium_rate": PhoneNumberType.PREMIUM_RATE,
    "shared_cost": PhoneNumberType.SHARED_COST,  # the caller pays part of the cost
    "voip": PhoneNumberType.VOIP,  # internet telephony ranges (NL 085)
    "personal_number": PhoneNumberType.PERSONAL_NUMBER,  # forwarded anywhere (UK 070)
    "pager": PhoneNumberType.PAGER,
    "uan": PhoneNumberType.UAN,  # company access numbers (UK 03, NL 084/087/088)
    "voicemail": PhoneNumberType.VOICEMAIL,
}
_TYPE_NAMES = {value: name for name, value in NUMBER_TYPES.items()}


@dataclass(frozen=True, slots=True)
class NumberInfo:
    """A valid number's country (ISO 3166-1 alpha-2, or ``GLOBAL``) and type."""

    region: str
    type: str  # a key of NUMBER_TYPES


def classify(number: str) -> NumberInfo | None:
    """The country and type of ``number`` (E.164), or ``None`` when no such number can exist:
    too short or too long for its country, or in a range its country has not assigned."""
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    region = phonenumbers.region_code_for_number(parsed)
    kind = _TYPE_NAMES.get(phonenumbers.number_type(parsed))
    if region is None or kind is None:  # a valid number has both; be strict if not
        return None
    return NumberInfo(region, kind)


def time_zones(number: str) -> tuple[str, ...]:
    """The IANA time zones of ``number`` (E.164) by its numbering plan: one for a number of a
    single zone, several for a range that spans them (a US toll-free number, a mobile range of
    a large country); none when libphonenumber does not know (global services, ``+800``)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return ()
    zones = timezone.time_zones_for_number(parsed)
    return tuple(z for z in zones if z != timezone.UNKNOWN_TIMEZONE)


def calling_code(number: str) -> str | None:
    """The country calling code of ``number`` (E.164: ``49`` for ``+49 30…``, ``1`` for the
    whole of NANP), or ``None`` when it does not parse as one."""
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return None
    return str(parsed.country_code) if parsed.country_code else None


def local_prefix(number: str) -> str | None:
    """The part of ``number`` (E.164) a callee sees as local: its country calling code and its
    geographic area code where the plan has one (``+1212`` for ``+1 212 555…``, ``+4930`` for
    Berlin), else the calling code alone (``+447`` mobiles: ``+44``); ``None`` when it does not
    parse. A caller number sharing it is local presence (``calls/outbound/number_health.py``)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return None
    if not parsed.country_code:
        return None
    area = phonenumbers.length_of_geographical_area_code(parsed)
    national = phonenumbers.national_significant_number(parsed)
    return f"+{parsed.country_code}{national[:area]}"


def is_region(code: str) -> bool:
    """An ISO 3166-1 alpha-2 code libphonenumber has a numbering plan for, or ``GLOBAL``."""
    return code in phonenumbers.SUPPORTED_REGIONS or code == GLOBAL


__all__ = [
    "GLOBAL",
    "NUMBER_TYPES",
    "NumberInfo",
    "calling_code",
    "classify",
    "is_region",
    "local_prefix",
    "time_zones",
]
