"""How a benchmark records its result: the report printed, and with ``--write`` kept as
``bench/results/<name>-<date>.md`` (the date the run started)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def publish(text: str, name: str, started: dt.datetime, *, write: bool) -> None:
    """Print ``text``; with ``write``, also keep it under ``results/`` (its path on stderr)."""
    print(text)
    if write:
        out = RESULTS / f"{name}-{started:%Y-%m-%d}.md"
        out.write_text(text)
        print(f"written to {out}", file=sys.stderr)
