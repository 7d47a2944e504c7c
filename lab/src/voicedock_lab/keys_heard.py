"""What the lab's DTMF party (``+31612345680``, dialplan/lab/extensions.conf) heard of the keys
played to it: each key with when it came, from its ``dtmf-<tag>-times.txt``
(``<key>@<epoch seconds.ms>/...``), and the pauses between them."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path


def keys_heard(times_file: Path) -> list[tuple[str, float]]:
    """The keys in the order they came, each with its time (epoch seconds)."""
    heard = []
    for entry in times_file.read_text().strip().split("/"):
        if entry:
            key, _, at = entry.partition("@")
            heard.append((key, float(at)))
    return heard


def gaps_between(heard: list[tuple[str, float]]) -> list[float]:
    """Seconds from each key to the next."""
    return [later - earlier for (_, earlier), (_, later) in pairwise(heard)]
