"""Numbers said or written in groups ("4111 1111-1111, 1111", "one one one two two two"): the
windows of a run's groups whose digits a check accepts.

A card number or a national identifier may be said with what follows it ("... and it expires
twelve twenty-eight"), so a run of digit groups is read window by window: from each group, the
longest window of whole groups whose digits, of an accepted length, pass the check; the next
window starts after it. A window is never longer than the longest accepted length, so reading a
run is linear in its length.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

__all__ = ["DIGIT_RUN", "digit_windows"]

Span = tuple[int, int]

# A run of digits, in groups a separator apart: "4111 1111-1111, 1111" (or "4111. 1111 …":
# a recognizer ends a sentence where the caller paused between groups).
DIGIT_RUN = re.compile(r"\d+(?:(?:[ \-]|[,.] ?)\d+)*")
_GROUP = re.compile(r"\d+")


def digit_windows(
    text: str, lengths: tuple[int, int], valid: Callable[[str], bool]
) -> Iterator[Span]:
    """The spans of ``text``'s digit windows of ``lengths`` (fewest, most digits) that
    ``valid`` accepts (given the digits alone), leftmost first, none overlapping."""
    for run in DIGIT_RUN.finditer(text):
        groups = [m.span() for m in _GROUP.finditer(run.group())]
        base, first = run.start(), 0
        while first < len(groups):
            last = _window(run.group(), groups, first, lengths, valid)
            if last is None:
                first += 1
                continue
            yield base + groups[first][0], base + groups[last][1]
            first = last + 1


def _window(
    run: str,
    groups: list[Span],
    first: int,
    lengths: tuple[int, int],
    valid: Callable[[str], bool],
) -> int | None:
    """The last group of the longest valid window starting at group ``first``."""
    best, digits = None, ""
    low, high = lengths
    for last in range(first, len(groups)):
        digits += run[groups[last][0] : groups[last][1]]
        if len(digits) > high:
            break
        if len(digits) >= low and valid(digits):
            best = last
    return best
