"""What every table of the settings shares: a key it does not name is refused, and a field's
type carries its bounds and what a value outside them is told (``load.py`` names the key)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated

import msgspec
from msgspec import Meta

from voicedock.validation import E164_PATTERN, TOKEN_PATTERN, WHITESPACE

# The key of a field's ``Meta.extra`` holding what a refused value is told; without it, an
# integer's message is its bounds ("must be 1-65535"), a choice's the choices.
REFUSED = "refused"


class Table(msgspec.Struct, forbid_unknown_fields=True):
    """A table of the file (or an entry of an array of tables)."""


def whole(pattern: str) -> str:
    """``pattern`` matching the whole value: msgspec searches, and ``$`` allows a newline."""
    return rf"^(?:{pattern})\Z"


def matching(pattern: str, refused: str, *, max_length: int | None = None) -> Meta:
    """A text ``pattern`` matches whole, told ``refused`` otherwise."""
    return Meta(pattern=whole(pattern), max_length=max_length, extra={REFUSED: refused})


def within(low: int, high: int | None, refused: str) -> Meta:
    """A number from ``low`` to ``high`` (None: no top), told ``refused`` otherwise; without
    a message of its own (a bare ``Meta(ge=, le=)``) it is told "must be <low>-<high>"."""
    return Meta(ge=low, le=high, extra={REFUSED: refused})


def one_of(choices: Iterable[str], refused: str | None = None) -> Meta:
    """A text that is one of ``choices`` (told "must be one of a, b" otherwise)."""
    names = tuple(choices)
    alternatives = "|".join(map(re.escape, names))
    return matching(alternatives, refused or f"must be one of {', '.join(names)}")


NAME_CHARACTERS = "letters, digits, '_', '.', '-' only"
NAME_MAX = 64  # a node id, a server's name, a websocket_client.conf section

Port = Annotated[int, Meta(ge=1, le=65535)]
Token = Annotated[str, matching(TOKEN_PATTERN, NAME_CHARACTERS)]
NotEmpty = Annotated[str, matching(rf"[\s\S]*[^{WHITESPACE}][\s\S]*", "must not be empty")]
E164 = Annotated[str, matching(E164_PATTERN, "must be E.164 (+ and 7-15 digits)")]
Days = Annotated[int, Meta(ge=0, le=36_500)]  # 0: forever
