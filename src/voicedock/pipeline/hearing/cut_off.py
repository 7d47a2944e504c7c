"""Early cut-off: the caller was judged finished and went on speaking within
``RESUME_WITHIN_MS`` of that judgement, so they had not finished.

One definition for every place that counts it: ``voicedock eval turns`` on recorded calls
(``turn_replay.py``) and a live call's events (``pipeline/dialogue/cut_offs.py``).
"""

from __future__ import annotations

RESUME_WITHIN_MS = 1000  # the caller speaking again this soon had not finished


def resumed_early(decided_ms: float, resumed_ms: float) -> bool:
    """Speech started at ``resumed_ms`` cut off the end of turn decided at ``decided_ms``
    (both on one clock, in milliseconds): it came after it, within ``RESUME_WITHIN_MS``."""
    return decided_ms < resumed_ms <= decided_ms + RESUME_WITHIN_MS
