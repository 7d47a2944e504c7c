"""Build (once) and cache a Debian chroot with Asterisk for the lab PBX.

Each Asterisk version the lab runs (``voicedock_lab.asterisk_versions``: 22 from Debian
testing, 16 from Debian bullseye) has a chroot, a marker and a lock of its own in the cache
directory.

The chroot is built in ``<cache>/root.partial`` and renamed to ``<cache>/root`` only after every
step succeeded and the marker file is written, so a crash leaves at most a ``root.partial`` that
the next run deletes. A file lock serialises concurrent provisionings of one cache directory.

Nothing is mounted by us. ``debootstrap`` mounts /proc and /sys inside the target while it
runs its second stage and unmounts them itself; if it is killed half-way, those mounts are found
in /proc/mounts and unmounted before the half-built tree is deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from voicedock_lab.asterisk_versions import BUILDS, DEFAULT_VERSION, AsteriskBuild
from voicedock_lab.errors import LabError
from voicedock_lab.settings import LabSettings

MARKER_NAME = ".voicedock-lab-ready"
PACKAGES = BUILDS[DEFAULT_VERSION].packages
# Bump when the packages or the build steps change: an older chroot is then rebuilt.
CHROOT_FORMAT = "1"
_CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "DEBIAN_FRONTEND": "noninteractive",
    "LANG": "C.UTF-8",
    "HOME": "/root",
}


def marker_text(build: AsteriskBuild = BUILDS[DEFAULT_VERSION]) -> str:
    """What a finished chroot of ``build`` holds in its marker file."""
    text = f"format={CHROOT_FORMAT}\npackages={' '.join(build.packages)}\n"
    if build.version != DEFAULT_VERSION:
        text += f"asterisk={build.version}\nsuite={build.suite}\n"
    return text


def is_provisioned(settings: LabSettings) -> bool:
    marker = settings.chroot_dir / MARKER_NAME
    try:
        return marker.read_text() == marker_text(settings.build)
    except OSError:
        return False


def provision(settings: LabSettings, *, log: bool = True) -> float:
    """Make sure the chroot exists; returns the seconds spent (about 0 when cached)."""
    started = time.monotonic()
    if is_provisioned(settings):
        return time.monotonic() - started
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(settings.cache_dir / settings.build.lock_name):
        # Another process may have finished while we waited for the lock.
        if is_provisioned(settings):
            return time.monotonic() - started
        _build(settings, log=log)
    return time.monotonic() - started


def _say(log: bool, message: str) -> None:
    if log:
        print(f"[lab] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _build(settings: LabSettings, *, log: bool) -> None:
    final = settings.chroot_dir
    partial = final.with_name(final.name + ".partial")
    users = processes_rooted_in(final)
    if users:
        raise LabError(f"{final} must be rebuilt but pids {users} run in it; stop them first")
    for stale in (partial, final):
        if stale.exists():
            _say(log, f"removing incomplete chroot {stale}")
            remove_tree(stale)
    ensure_debootstrap(log=log)
    _say(log, f"debootstrap {settings.debian_suite} into {partial} (a few minutes, once)")
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            settings.debian_suite,
            str(partial),
            settings.mirror,
        ],
        what="debootstrap",
    )
    # Keep package maintainer scripts from starting daemons inside the chroot.
    policy = partial / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    # The mirror may serve a Release file whose Valid-Until lies before this machine's clock
    # (snapshot mirrors, VMs with a skewed clock); signatures are still checked.
    (partial / "etc/apt/apt.conf.d/99voicedock-lab").write_text(
        'Acquire::Check-Valid-Until "false";\n'
    )
    packages = settings.build.packages
    _say(log, f"apt-get install {' '.join(packages)} inside the chroot")
    chroot_run(partial, ["apt-get", "update"], what="apt-get update")
    chroot_run(
        partial,
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        what="apt-get install",
    )
    chroot_run(partial, ["apt-get", "clean"], what="apt-get clean")
    (partial / MARKER_NAME).write_text(marker_text(settings.build))
    partial.rename(final)
    _say(log, f"chroot ready at {final}")


def ensure_debootstrap(*, log: bool = True) -> None:
    if shutil.which("debootstrap"):
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise LabError("debootstrap is missing and cannot be installed (need root and apt-get)")
    _say(log, "debootstrap is missing: apt-get update && apt-get install -y debootstrap")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update"], what="apt-get update (host)", env=env)
    _run(["apt-get", "install", "-y", "debootstrap"], what="apt-get install debootstrap", env=env)


def chroot_run(
    root: Path, argv: list[str], *, what: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command inside the chroot with a clean environment."""
    return _run(["chroot", str(root), *argv], what=what, env=dict(_CHROOT_ENV), check=check)


def _run(
    argv: list[str],
    *,
    what: str,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise LabError(f"{what}: cannot run {argv[0]}: {exc}") from exc
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise LabError(f"{what} failed with exit code {result.returncode}:\n{tail}")
    return result


def processes_rooted_in(root: Path) -> list[int]:
    """Pids whose root directory is ``root`` (e.g. a lab Asterisk still running in it)."""
    target = str(root.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "root") == target:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below ``root`` (deepest first), read from /proc/mounts."""
    prefix = str(root.resolve())
    found: list[Path] = []
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) < 2:
            continue
        point = fields[1].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_tree(root: Path) -> None:
    """Unmount anything left mounted inside ``root``, then delete it."""
    for point in mounts_under(root):
        _run(["umount", "-l", str(point)], what=f"umount {point}", check=False)
    if mounts_under(root):
        raise LabError(f"cannot remove {root}: still has mounts {mounts_under(root)}")
    shutil.rmtree(root)
