"""The previous version of voicedock as a source tree, for its nodes to run beside this
version's on one database (``tests/nodes/test_rolling_upgrade_lab.py``, docs/upgrades.md).

The previous version is the one before this version's newest migration: on the main line
(first parents), the commit before the one that brought that migration in — or the checked-out
commit itself while the newest migration is not committed yet. So a node of it runs on the
schema this version migrated, one migration short of it: the case of every rolling upgrade
that adds one. Its ``src``, ``tests`` and ``lab`` are taken from the repository's history
(``git archive``): a clone with its history is needed (not a shallow one, nor an export).
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from voicedock.store.migrate import load_migrations

REPOSITORY = Path(__file__).resolve().parents[2]
MIGRATIONS = "src/voicedock/store/migrations/postgres"
# What a node of the previous version must have for a rolling upgrade without cutting calls.
DRAIN = "src/voicedock/calls/nodes/drain.py"


class NoPreviousVersion(Exception):
    """The repository's history cannot give the previous version (the message says why)."""


@dataclass(frozen=True, slots=True)
class Version:
    commit: str
    tree: Path  # its src, tests and lab
    newest_migration: int


def _git(*args: str) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPOSITORY), *args], capture_output=True, check=False, timeout=60
        )
    except FileNotFoundError as exc:
        raise NoPreviousVersion("no git command") from exc
    if done.returncode != 0:
        raise NoPreviousVersion(
            f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}"
        )
    return done.stdout


def previous_commit() -> str:
    """The commit of the version before this version's newest migration."""
    newest = load_migrations("postgres")[-1]
    path = f"{MIGRATIONS}/{newest.version:03d}_{newest.name}.sql"
    if _git("ls-tree", "HEAD", "--", path).strip() == b"":
        return _git("rev-parse", "HEAD").decode().strip()  # not committed yet: HEAD is before
    added = _git("log", "--first-parent", "--diff-filter=A", "--format=%H", "HEAD", "--", path)
    commits = added.decode().split()
    if not commits:
        raise NoPreviousVersion(f"the history has no commit adding {path} (a shallow clone?)")
    return _git("rev-parse", f"{commits[-1]}^1").decode().strip()


def previous_version(into: Path) -> Version:
    """The previous version's source tree, extracted into ``into``."""
    commit = previous_commit()
    archive = _git("archive", "--format=tar", commit, "src", "tests", "lab")
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    if not (into / DRAIN).exists():
        raise NoPreviousVersion(f"{commit[:12]} has no drain ({DRAIN}): too old to roll from")
    versions = [int(p.name[:3]) for p in (into / MIGRATIONS).glob("[0-9][0-9][0-9]_*.sql")]
    return Version(commit, into, max(versions))


__all__ = ["NoPreviousVersion", "Version", "previous_version"]
