"""Where a node's memory grows: two of its ``tracemalloc`` snapshots compared, by where the
memory that grew between them was allocated.

A node traces its allocations when started with ``VOICEDOCK_TRACEMALLOC=<dir>`` (the soak's
``--tracemalloc DIR`` sets it: ``tests/nodes/node_process.py``), writing
``snapshot-<seconds>.bin`` every ``VOICEDOCK_TRACEMALLOC_EVERY`` seconds. This compares the
snapshot nearest ``--since`` seconds (the end of warm-up) with the last one and prints the
allocation sites that grew most: by line, then the largest by whole traceback.

The census the node writes beside them each time (``objects-<seconds>.txt``, also without
tracing: ``VOICEDOCK_TRACEMALLOC_FRAMES=0``) tells Python's heap from the allocator: its RSS,
Python's allocated blocks, glibc's arenas (in use and free), the collector's objects by type
voicedock's by class, and the largest containers voicedock's objects and modules hold (by
class and attribute). ``--census`` prints them minute by minute, the counters first, then
each type or class whose count grew after ``--since``: RSS rising while the blocks and
malloc's "in use" stay flat is the allocator's (fragmentation, arenas); blocks rising with a
class's count is Python objects kept; blocks rising with no collector-tracked type is objects
held by containers the collector does not track (dicts of strings, tuples of strings).

Usage: ``.venv/bin/python bench/memory_growth.py DIR [--since 300] [--top 25] [--census]``
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


def census(directory: Path, since_s: float, top: int) -> str:
    """The node's census files over time: the counters each minute, then what grew most."""
    taken = sorted(
        (float(path.stem.removeprefix("objects-")), path)
        for path in directory.glob("objects-*.txt")
    )
    if not taken:
        return f"no census in {directory}"
    rows = [(at, _census_counts(path.read_text())) for at, path in taken]
    counters = [k for k in rows[-1][1] if not k.startswith(("gc ", "voicedock", "@ "))]
    lines = ["| s | " + " | ".join(counters) + " |", "|---" * (len(counters) + 1) + "|"]
    for at, row in rows:
        lines.append(f"| {at:.0f} | " + " | ".join(str(row.get(k, "")) for k in counters) + " |")
    first_at, first = min(rows, key=lambda row: abs(row[0] - since_s))
    last_at, last = rows[-1]
    grown = sorted(
        ((last[k] - first.get(k, 0), k) for k in last if k not in counters),
        reverse=True,
    )
    lines += ["", f"Counts grown most from {first_at:.0f} s to {last_at:.0f} s:", ""]
    lines += [f"- {d:+8d}  {k} ({last[k]})" for d, k in grown[:top] if d > 0]
    return "\n".join(lines)


def _census_counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "gc" and len(words) == 3:
            counts[f"gc {words[2]}"] = int(words[1])
        elif words[0].isdigit() and len(words) == 3 and words[1] == "@":  # a container's size
            counts[f"@ {words[2]}"] = int(words[0])
        elif words[0].isdigit() and len(words) == 2:
            counts[words[1]] = int(words[0])
        else:  # "name value" pairs, several on one line
            for name, value in zip(words[::2], words[1::2], strict=False):
                counts[name] = int(value)
    return counts


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
    parser.add_argument("--census", action="store_true", help="the census files over time")
    args = parser.parse_args()
    if args.census:
        print(census(args.directory, args.since, args.top))
    else:
        print(growth(args.directory, args.since, args.top))


if __name__ == "__main__":
    main()
