"""National identifiers, of the countries whose format a library knows (``python-stdnum``):
digits or letters said or written, their check digits or letters checked.

Numbers of digits alone are read in windows of digit groups (``digit_runs.py``), so a spoken
"one one one two two two three three three" is found as written "111222333" is. Which countries
are read and what each checks is the table below; a number whose check fails is left (a US
Social Security number has no check: any nine digits of its ranges are taken).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from stdnum.be import nn as be_nn
from stdnum.de import idnr as de_idnr
from stdnum.es import dni as es_dni
from stdnum.es import nie as es_nie
from stdnum.fr import nir as fr_nir
from stdnum.it import codicefiscale as it_codice_fiscale
from stdnum.nl import bsn as nl_bsn
from stdnum.us import ssn as us_ssn

from voicedock.domain.redaction.digit_runs import digit_windows

__all__ = ["NATIONAL_IDS", "national_ids"]

Span = tuple[int, int]

# The identifiers of digits alone: (country, name, digits, check).
NATIONAL_IDS: tuple[tuple[str, str, int, Callable[[str], bool]], ...] = (
    ("NL", "burgerservicenummer (BSN), 11-proof", 9, nl_bsn.is_valid),
    ("US", "Social Security number (its ranges; no check digit)", 9, us_ssn.is_valid),
    ("DE", "steuerliche Identifikationsnummer, ISO 7064 check", 11, de_idnr.is_valid),
    ("BE", "numéro de registre national, mod 97 check", 11, be_nn.is_valid),
    ("FR", "numéro de sécurité sociale (NIR), mod 97 key", 15, fr_nir.is_valid),
)
_DIGIT_LENGTHS = (
    min(length for _, _, length, _ in NATIONAL_IDS),
    max(length for _, _, length, _ in NATIONAL_IDS),
)
_CHECKS = {
    length: tuple(check for _, _, n, check in NATIONAL_IDS if n == length)
    for _, _, length, _ in NATIONAL_IDS
}

# GB National Insurance number: two prefix letters of the allowed ones, six digits, A-D;
# letters in capitals (as a recognizer writes letters said one by one), spaces anywhere.
_GB_NINO = re.compile(
    r"(?<![\w])([A-CEGHJ-PR-TW-Z]) ?([A-CEGHJ-NPR-TW-Z]) ?((?:\d ?){6})([A-D])(?![\w])"
)
_GB_NINO_REFUSED_PREFIXES = ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ")
# ES DNI (eight digits and a check letter) and NIE (X, Y or Z, seven digits, a check letter).
_ES_DNI_NIE = re.compile(r"(?<![\w])(?:[XYZxyz] ?)?\d(?: ?\d){6,7} ?-? ?[A-Za-z](?![\w])")
# IT codice fiscale: sixteen letters and digits, its check letter last.
_IT_CODICE_FISCALE = re.compile(r"(?<![\w])[A-Za-z0-9]{16}(?![\w])")


def _digits_valid(digits: str) -> bool:
    return any(check(digits) for check in _CHECKS.get(len(digits), ()))


def _compact(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


def national_ids(text: str) -> Iterator[Span]:
    """The national identifiers in ``text`` whose checks hold."""
    yield from digit_windows(text, _DIGIT_LENGTHS, _digits_valid)
    for match in _GB_NINO.finditer(text):
        if match.group(1) + match.group(2) not in _GB_NINO_REFUSED_PREFIXES:
            yield match.span()
    for match in _ES_DNI_NIE.finditer(text):
        compact = _compact(match.group())
        if es_dni.is_valid(compact) or es_nie.is_valid(compact):
            yield match.span()
    for match in _IT_CODICE_FISCALE.finditer(text):
        if it_codice_fiscale.is_valid(match.group()):
            yield match.span()
