"""Where a node's memory grows: two of its ``tracemalloc`` snapshots compared, by where the
memory that grew between them was allocated.

A node traces its allocations when started with ``VOICEDOCK_TRACEMALLOC=<dir>`` (the soak's
``--tracemalloc DIR`` sets it: ``tests/nodes/node_process.py``), writing
``snapshot-<seconds>.bin`` every ``VOICEDOCK_TRACEMALLOC_EVERY`` seconds. This compares the
snapshot nearest ``--since`` seconds (the end of warm-up) with the last one and prints the
allocation sites that grew most: by line, then the largest by whole traceback.

Usage: ``.venv/bin/python bench/memory_growth.py DIR [--since 300] [--top 25]``
"""

from __future__ import annotations

import argparse
import tracemalloc
from pathlib import Path

IGNORED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


def snapshots(directory: Path) -> list[tuple[float, Path]]:
    found = []
    for path in directory.glob("snapshot-*.bin"):
        found.append((float(path.stem.removeprefix("snapshot-")), path))
    return sorted(found)


def growth(directory: Path, since_s: float, top: int) -> str:
    taken = snapshots(directory)
    if len(taken) < 2:
        return f"fewer than two snapshots in {directory}"
    first_at, first = min(taken, key=lambda item: abs(item[0] - since_s))
    last_at, last = taken[-1]
    if last_at <= first_at:
        return "no snapshot after the one nearest --since"
    before = tracemalloc.Snapshot.load(str(first)).filter_traces(IGNORED)
    after = tracemalloc.Snapshot.load(str(last)).filter_traces(IGNORED)
    lines = [
        f"Traced memory {first_at:.0f} s → {last_at:.0f} s: "
        f"{_mb(sum(s.size for s in before.statistics('filename')))} → "
        f"{_mb(sum(s.size for s in after.statistics('filename')))}",
        "",
        "Grown most, by line (size change, count change, where):",
        "",
    ]
    for stat in after.compare_to(before, "lineno")[:top]:
        frame = stat.traceback[0]
        lines.append(
            f"- {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d}  "
            f"{_short(frame.filename)}:{frame.lineno}"
        )
    lines += ["", "The largest three by whole traceback (innermost last):", ""]
    for stat in after.compare_to(before, "traceback")[:3]:
        lines.append(f"{stat.size_diff / 1024:+.1f} KiB in {stat.count_diff:+d} blocks:")
        lines += [f"    {_short(f.filename)}:{f.lineno}" for f in reversed(stat.traceback)]
        lines.append("")
    return "\n".join(lines)


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--since", type=float, default=300.0, help="seconds: warm-up's end")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(growth(args.directory, args.since, args.top))


if __name__ == "__main__":
    main()
