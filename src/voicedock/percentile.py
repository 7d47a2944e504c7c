"""The nearest-rank percentile every report of the node uses (test runs' latency p95, the
turn replay's answer start): a value that was measured, never one interpolated between two."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[int], q: float) -> int | None:
    """Nearest-rank percentile (``q`` in (0, 1]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
