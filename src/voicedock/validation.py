"""Validation of every value that may reach a PBX (AMI, ARI, ESL or a dial string).

Dial strings are structure: Asterisk ``Dial()`` splits on ``&`` and reads ``/ @ ,`` as
separators; FreeSWITCH reads ``, | {} [] <> &`` and ``${...}``. So phone numbers are accepted
only in canonical E.164 (``+`` then 7–15 ASCII digits) and protocol header values never carry
control characters.
"""

from __future__ import annotations

import ipaddress
import re

from voicedock.errors import BadRequest

# ASCII digits only: str.isdigit() and \d accept unicode look-alikes such as "٣" or "３".
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# Phone numbers inside a text, in every form people and PBXs write them (``mask_numbers``).
# With a "+" (as is or URL-encoded: a request's path and query), wherever it stands, its digits
# in groups or not: "+4930123456", "%2B4930123456", "+49 30 1234567".
_PLUS_NUMBER = re.compile(r"(?:\+|%2[Bb])[1-9][0-9]*(?:[ .\-]?[0-9]+)*")
# Without: a run of digit groups (an area code in parentheses first, or not) standing alone
# (no letter, digit or ".:-+%/" touching it), or the user part of a SIP or tel URI or of a
# dial string ("sip:4930123456@", "tel:", "PJSIP/4930123456@carrier", "sofia/gateway/x/…").
_BARE_NUMBER = re.compile(
    r"(?:(?<=sip:)|(?<=sips:)|(?<=tel:)|(?<=/)|(?<![\w.:+%/\-]))"
    r"(?:\([0-9]{1,5}\) ?)?[0-9]++(?:[ .\-][0-9]+)*+"
    r"(?![\w]|[.:,][0-9])",
    re.IGNORECASE,
)
# What follows a count that is no number: its unit.
_UNIT = re.compile(r" ?(?:bytes?|[KMG]i?B|B|ms|s|seconds?|frames?|samples?|Hz)\b")
_GROUP = re.compile(r"[0-9]+")
_COMPACT_DATE = re.compile(r"(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])")
_NUMBER_DIGITS = (7, 15)  # the digits of a phone number: a national one to a full E.164
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}")
# The patterns of is_e164 and is_token, for the types that say them (matched whole).
E164_PATTERN = _E164.pattern
TOKEN_PATTERN = _TOKEN.pattern
# The characters str.strip() removes (str.isspace), as a regular expression class's body: the
# documented schema's patterns name them one by one ("\s" differs between regex engines).
WHITESPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A text that is not blank and holds no NUL; a line: no control character at all.
NOT_BLANK_PATTERN = rf"^[^\x00]*[^\x00{WHITESPACE}][^\x00]*$"
NOT_BLANK_LINE_PATTERN = rf"^[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f{WHITESPACE}][^\x00-\x1f\x7f]*$"


def is_e164(value: object) -> bool:
    return isinstance(value, str) and _E164.fullmatch(value) is not None


def require_e164(value: object, field: str = "destination") -> str:
    """Return ``value`` if it is canonical E.164, else raise a 400 naming ``field``."""
    if not is_e164(value):
        raise BadRequest(
            f"{field} must be a phone number in E.164 format (+ and 7-15 digits)",
            error="Invalid destination format" if field == "destination" else "Invalid request",
        )
    assert isinstance(value, str)
    return value


def has_control_chars(value: str) -> bool:
    return _CONTROL.search(value) is not None


def is_token(value: object) -> bool:
    """A conservative identifier: trunk names, endpoint names, correlation ids."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def is_host(value: object) -> bool:
    """An IPv4 or IPv6 address, or a DNS host name (letters, digits and '-' in dot-separated
    labels): what may stand before ``:port`` in an address given to a PBX."""
    if not isinstance(value, str) or not value or len(value) > 253:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return all(_HOST_LABEL.fullmatch(label) for label in value.removesuffix(".").split("."))
    return True


def mask_number(number: str | None) -> str:
    """A phone number safe for logs: country/area prefix and the last two digits only."""
    if not number:
        return "-"
    if len(number) <= 6:
        return "***"
    return f"{number[:4]}***{number[-2:]}"


def mask_numbers(text: str) -> str:
    """``text`` with every phone number in it masked by ``mask_number`` (its digits, the
    last two kept): a log line, an error's message, a request's path and query.

    A phone number is 7 to 15 digits, possibly in groups a space, ``-`` or ``.`` apart:

    * after ``+`` (or ``%2B``), wherever it stands;
    * as the user part of ``sip:``/``sips:``/``tel:`` URIs and dial strings (after ``/``:
      ``PJSIP/4930123456@carrier``);
    * standing alone: one run of digits (``4930123456789``, ``0030123456789``) unless a unit
      follows it (``1048576 bytes``) or it is a date (``20261126``); in groups, an area code
      in parentheses first (``(555) 123-4567``), or groups of 2 digits at least, three of
      them or a first one with the trunk prefix ``0`` (``555-123-4567``, ``030 1234567``),
      never a date (``2026-11-27``) or an IPv4 address.

    What touches a letter, a digit or ``. : - + % /`` otherwise is not one (UUIDs, times,
    ``host:port``, versions, decimals), nor are shorter runs (ports, durations, statuses,
    ids)."""
    text = _PLUS_NUMBER.sub(_masked_plus, text)
    return _BARE_NUMBER.sub(_masked_bare, text)


def _masked_plus(match: re.Match[str]) -> str:
    digits = "".join(_GROUP.findall(match.group()[1:].removeprefix("2B").removeprefix("2b")))
    if len(digits) < _NUMBER_DIGITS[0]:
        return match.group()
    return mask_number("+" + digits)


def _masked_bare(match: re.Match[str]) -> str:
    found = match.group()
    groups = _GROUP.findall(found)
    digits = "".join(groups)
    low, high = _NUMBER_DIGITS
    in_uri = match.start() > 0 and match.string[match.start() - 1] in ":/"
    if not low <= len(digits) <= high or not (in_uri or _number_shaped(found, groups, match)):
        return found
    return mask_number(digits)


def _number_shaped(found: str, groups: list[str], match: re.Match[str]) -> bool:
    """Whether digits standing alone are a phone number (``mask_numbers``' rule)."""
    if len(groups) == 1:  # neither a count (its unit follows) nor a date (20261126)
        unit = _UNIT.match(match.string, match.end())
        return unit is None and _COMPACT_DATE.fullmatch(found) is None
    if found.startswith("("):
        return True
    lengths = [len(g) for g in groups]
    if min(lengths) < 2 or lengths in ([4, 2, 2], [2, 2, 4]):  # a date
        return False
    if "." in found and len(groups) == 4 and max(lengths) <= 3:  # an IPv4 address
        return False
    return len(groups) >= 3 or groups[0].startswith("0")
