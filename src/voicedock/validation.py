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
# A number inside a text, its "+" as is or URL-encoded (a request's path and query).
_NUMBER_IN_TEXT = re.compile(r"(?:\+|%2[Bb])([1-9][0-9]{6,14})")
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
    """``text`` with every phone number in it (``+`` or ``%2B`` then 7-15 digits) masked by
    ``mask_number``: an error's message, a request's path and query."""
    return _NUMBER_IN_TEXT.sub(lambda m: mask_number("+" + m.group(1)), text)
