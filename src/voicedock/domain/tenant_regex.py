"""A regular expression an organization writes, run by a linear-time engine.

An organization's pattern (a test scenario's ``said`` regex) runs on voicedock's host against
text of its own choosing, so it is compiled by RE2 (``google-re2``), whose matching takes time
linear in the text whatever the pattern: no backtracking, hence no back-references or
look-arounds (refused when compiled). Matching is case-insensitive. Python's ``re`` never runs a
tenant's pattern.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import re2

__all__ = ["TenantRegex", "tenant_regex_refusal"]


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a refused pattern is the tenant's error, not the node's log
    return options


class TenantRegex:
    """A tenant's pattern compiled by RE2 (``ValueError`` when it is not one RE2 accepts)."""

    def __init__(self, pattern: str) -> None:
        try:
            self._compiled = re2.compile(pattern, _options())
        except re2.error as exc:
            raise ValueError(_message(exc)) from None

    @classmethod
    def any_word(cls, words: Iterable[str]) -> TenantRegex:
        """A match of any of ``words`` (literal text, not patterns) standing as words of their
        own: not inside a longer word of any script (``hours`` is not found in ``hourself``,
        nor ``tür`` in ``türen``)."""
        alternatives = "|".join(re2.escape(word) for word in words)
        if not alternatives:
            raise ValueError("no words to match")
        return cls(rf"(?:^|[^\pL\pN_])(?:{alternatives})(?:$|[^\pL\pN_])")

    def search(self, text: str) -> bool:
        """Whether some part of ``text`` matches."""
        return self._compiled.search(text) is not None

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        """The ``[start, end)`` of each match in ``text``, left to right, none overlapping."""
        for match in self._compiled.finditer(text):
            yield match.span()


def tenant_regex_refusal(pattern: str) -> str | None:
    """Why ``pattern`` is refused (``None``: RE2 accepts it)."""
    try:
        TenantRegex(pattern)
    except ValueError as exc:
        return f"is not a regular expression RE2 accepts ({exc})"
    return None


def _message(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else exc
    return detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
