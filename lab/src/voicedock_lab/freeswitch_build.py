"""Build (once) and cache a Debian trixie chroot with FreeSWITCH 1.11.1 and mod_audio_stream.

FreeSWITCH is not packaged in Debian, so the lab builds it from the five upstream source archives
``freeswitch_sources`` finds (``../shared/freeswitch``, whose README gives the measured recipe
this module follows, or the pinned upstream downloads): a ``debootstrap --variant=minbase
trixie`` chroot, the build dependencies from apt, then sofia-sip, spandsp, FreeSWITCH (a small
module set including mod_sofia, mod_event_socket, mod_loopback) and mod_audio_stream with its
libwsc, each built with ``nice -n 19 make -j2``.

The cache entry is ``<cache>/freeswitch-<key>/root`` where ``<key>`` hashes the archives and
this recipe (``BUILD_FORMAT``): a new archive or recipe builds a new entry, an unchanged one
is reused. The tree is built in ``root.partial`` and renamed only after every step succeeded
and the marker is written; a failed or killed build leaves at most a ``root.partial`` that the
next build deletes. A file lock serialises two processes building the same entry. The whole
build's output goes to ``<cache>/freeswitch-<key>/build.log``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from voicedock_lab.errors import LabError
from voicedock_lab.provision import (
    ensure_debootstrap,
    exclusive_lock,
    mounts_under,
    processes_rooted_in,
    remove_tree,
)

# Bump when the packages, the module set or the build steps change: a new entry is built.
BUILD_FORMAT = "1"
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
MARKER_NAME = ".voicedock-freeswitch-ready"
FREESWITCH_PREFIX = "/usr/local/freeswitch"

BUILD_PACKAGES = (
    "build-essential",
    "autoconf",
    "automake",
    "libtool",
    "libtool-bin",
    "pkg-config",
    "cmake",
    "libssl-dev",
    "libcurl4-openssl-dev",
    "libpcre2-dev",
    "libspeex-dev",
    "libspeexdsp-dev",
    "libsqlite3-dev",
    "libedit-dev",
    "uuid-dev",
    "libsndfile1-dev",
    "zlib1g-dev",
    "libjpeg-dev",
    "libtiff-dev",
    "libevent-dev",
    "procps",
    "xz-utils",
)

MODULES = (
    "applications/mod_commands",
    "applications/mod_dptools",
    "applications/mod_expr",
    "applications/mod_hash",
    "dialplans/mod_dialplan_xml",
    "endpoints/mod_sofia",
    "endpoints/mod_loopback",
    "event_handlers/mod_event_socket",
    "formats/mod_native_file",
    "formats/mod_sndfile",
    "formats/mod_tone_stream",
    "loggers/mod_console",
    "loggers/mod_logfile",
    "say/mod_say_en",
)

# What each archive is: its file name starts with "<name>-". An archive holds one top folder
# (named like the file in ../shared/freeswitch, otherwise as upstream names it); it is unpacked
# into /build/<file name without its suffix>.
SOURCE_NAMES = ("freeswitch", "sofia-sip", "spandsp", "mod_audio_stream", "libwsc")
ARCHIVE_SUFFIXES = (".tar.xz", ".tar.gz")

# Every step at the lowest priority: the machine is shared (tests of others run meanwhile).
_NICE = ("nice", "-n", "19")
_CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "DEBIAN_FRONTEND": "noninteractive",
    "LANG": "C.UTF-8",
    "HOME": "/root",
}


def default_cache_dir() -> Path:
    """``$VOICEDOCK_FREESWITCH_CACHE`` or ``~/.cache/voicedock``."""
    override = os.environ.get("VOICEDOCK_FREESWITCH_CACHE")
    if override:
        return Path(override)
    return Path.home() / ".cache" / "voicedock"


@dataclass(frozen=True)
class FreeswitchSources:
    """The five source archives, by what they are."""

    tarballs: dict[str, Path]

    @classmethod
    def find(cls, directory: Path) -> FreeswitchSources:
        """The archives (``.tar.xz`` or ``.tar.gz``) in ``directory``; ``LabError`` naming what
        is missing."""
        if not directory.is_dir():
            raise LabError(f"FreeSWITCH sources not found: {directory} is no folder")
        found: dict[str, Path] = {}
        for name in SOURCE_NAMES:
            matches = sorted(
                path for suffix in ARCHIVE_SUFFIXES for path in directory.glob(f"{name}-*{suffix}")
            )
            if len(matches) != 1:
                raise LabError(
                    f"expected one {name}-*.tar.xz (or .tar.gz) in {directory}, "
                    f"found {len(matches)}"
                )
            found[name] = matches[0]
        return cls(found)

    def key(self) -> str:
        """Hash of the recipe and of every archive's name and content."""
        digest = hashlib.sha256(f"format={BUILD_FORMAT}\n".encode())
        digest.update(" ".join((*BUILD_PACKAGES, *MODULES)).encode())
        for name in SOURCE_NAMES:
            path = self.tarballs[name]
            digest.update(f"\n{path.name}\n".encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()[:16]

    def folder(self, name: str) -> str:
        """Where ``name`` is unpacked under ``/build``: its file name without the suffix."""
        file_name = self.tarballs[name].name
        for suffix in ARCHIVE_SUFFIXES:
            file_name = file_name.removesuffix(suffix)
        return file_name


@dataclass(frozen=True)
class FreeswitchBuild:
    """Where one cached build lives."""

    entry_dir: Path

    @classmethod
    def for_sources(
        cls, sources: FreeswitchSources, cache_dir: Path | None = None
    ) -> FreeswitchBuild:
        return cls((cache_dir or default_cache_dir()) / f"freeswitch-{sources.key()}")

    @property
    def root(self) -> Path:
        return self.entry_dir / "root"

    @property
    def log_path(self) -> Path:
        return self.entry_dir / "build.log"

    def is_built(self) -> bool:
        return (self.root / MARKER_NAME).is_file()


def cached_builds(cache_dir: Path | None = None) -> list[FreeswitchBuild]:
    """Every finished build in the cache, the most recently finished first."""

    def finished(marker: Path) -> float:
        try:
            return marker.stat().st_mtime
        except OSError:  # removed meanwhile
            return 0.0

    markers = (cache_dir or default_cache_dir()).glob(f"freeswitch-*/root/{MARKER_NAME}")
    return [FreeswitchBuild(m.parent.parent) for m in sorted(markers, key=finished, reverse=True)]


def build(
    sources: FreeswitchSources, cache_dir: Path | None = None, *, log: bool = True
) -> tuple[FreeswitchBuild, float]:
    """Make sure the build for ``sources`` exists; returns it and the seconds spent."""
    started = time.monotonic()
    target = FreeswitchBuild.for_sources(sources, cache_dir)
    if target.is_built():
        return target, time.monotonic() - started
    target.entry_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.entry_dir / ".build.lock"):
        if not target.is_built():  # another process may have finished while we waited
            _build(sources, target, log=log)
    return target, time.monotonic() - started


def _say(log: bool, message: str) -> None:
    if log:
        print(f"[lab] {message}", file=sys.stderr, flush=True)


def _build(sources: FreeswitchSources, target: FreeswitchBuild, *, log: bool) -> None:
    final = target.root
    partial = final.with_name("root.partial")
    users = processes_rooted_in(final) + processes_rooted_in(partial)
    if users:
        raise LabError(f"{final} must be rebuilt but pids {users} run in it; stop them first")
    for stale in (partial, final):
        if stale.exists():
            _say(log, f"removing incomplete build {stale}")
            remove_tree(stale)
    ensure_debootstrap(log=log)
    target.log_path.write_text("")
    _say(log, f"building FreeSWITCH into {final} (about 5 minutes, once); log: {target.log_path}")
    started = time.monotonic()
    try:
        _run_logged(
            target,
            "debootstrap",
            [*_NICE, "debootstrap", "--variant=minbase", SUITE, str(partial), MIRROR],
        )
        policy = partial / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        (partial / "etc/apt/apt.conf.d/99voicedock-lab").write_text(
            'Acquire::Check-Valid-Until "false";\n'
        )
        _step(target, "apt-get install", list(BUILD_PACKAGES))
        _chroot_logged(target, partial, "apt-get update", ["apt-get", "update"])
        _chroot_logged(
            target,
            partial,
            "apt-get install",
            ["apt-get", "install", "-y", "--no-install-recommends", *BUILD_PACKAGES],
        )
        _chroot_logged(target, partial, "apt-get clean", ["apt-get", "clean"])
        src = partial / "build"
        src.mkdir()
        for name, tarball in sources.tarballs.items():
            unpack(target, name, tarball, src / sources.folder(name))
        (src / "build.sh").write_text(build_script(sources))
        _mount_proc(target, partial)
        try:
            _chroot_logged(target, partial, "compile", ["/bin/sh", "-e", "/build/build.sh"])
        finally:
            _umount_all(target, partial)
        remove_tree(src)
        _chroot_logged(target, partial, "apt-get clean", ["apt-get", "clean"])
        (partial / MARKER_NAME).write_text(f"format={BUILD_FORMAT}\n")
        partial.rename(final)
    except BaseException:
        _say(log, f"build failed; see {target.log_path}")
        if partial.exists() and not processes_rooted_in(partial):
            remove_tree(partial)
        raise
    seconds = time.monotonic() - started
    _step(target, f"done in {seconds:.0f} s", [])
    _say(log, f"FreeSWITCH built in {seconds:.0f} s at {final}")


def unpack(target: FreeswitchBuild, name: str, tarball: Path, into: Path) -> None:
    """The archive's one top folder becomes ``into``, whatever upstream named it."""
    into.mkdir()
    argv = ["tar", "-xf", str(tarball), "-C", str(into), "--strip-components=1"]
    _run_logged(target, f"unpack {name}", argv)


def build_script(sources: FreeswitchSources) -> str:
    """The shell script run inside the chroot (``/bin/sh -e``), from ``/build``."""
    fs = sources.folder("freeswitch")
    modules = "\n".join(MODULES)
    return f"""set -e
t() {{ echo "== $(date +%T) $*"; }}
cd /build/{sources.folder("sofia-sip")}
t sofia-sip
./bootstrap.sh
./configure --prefix=/usr --without-doxygen --disable-static
make -j2
make install
cd /build/{sources.folder("spandsp")}
t spandsp
./bootstrap.sh
./configure --prefix=/usr --without-doxygen --disable-static
make -j2
make install
ldconfig
cd /build/{fs}
t freeswitch
cat > modules.conf <<'EOF'
{modules}
EOF
cp modules.conf build/modules.conf.in
# The release archive ships its bootstrap as rebootstrap.sh (configure made already); the lab
# bootstraps every tree alike.
[ -f bootstrap.sh ] || cp rebootstrap.sh bootstrap.sh
./bootstrap.sh -j
./configure --prefix={FREESWITCH_PREFIX} --disable-libvpx --disable-libyuv --disable-debug \\
    --without-png --without-freetype --disable-fhs
make -j2
make install
t mod_audio_stream
cd /build/{sources.folder("mod_audio_stream")}
rm -rf libs/libwsc
cp -a /build/{sources.folder("libwsc")} libs/libwsc
mkdir -p _build
cd _build
PKG_CONFIG_PATH={FREESWITCH_PREFIX}/lib/pkgconfig cmake -DCMAKE_BUILD_TYPE=Release ..
make -j2
make install
test -f {FREESWITCH_PREFIX}/mod/mod_audio_stream.so
test -x {FREESWITCH_PREFIX}/bin/freeswitch
rm -rf {FREESWITCH_PREFIX}/fonts {FREESWITCH_PREFIX}/htdocs {FREESWITCH_PREFIX}/images
t done
"""


def _step(target: FreeswitchBuild, what: str, argv: list[str]) -> None:
    with target.log_path.open("a") as handle:
        handle.write(f"\n===== {time.strftime('%H:%M:%S')} {what} {' '.join(argv)}\n")


def _run_logged(
    target: FreeswitchBuild, what: str, argv: list[str], env: dict[str, str] | None = None
) -> None:
    with target.log_path.open("ab") as handle:
        handle.write(f"\n===== {time.strftime('%H:%M:%S')} {what}\n".encode())
        handle.flush()
        try:
            code = subprocess.run(  # noqa: S603 - fixed argv, no shell
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                check=False,
            ).returncode
        except OSError as exc:
            raise LabError(f"{what}: cannot run {argv[0]}: {exc}") from exc
    if code != 0:
        tail = "\n".join(target.log_path.read_text(errors="replace").splitlines()[-20:])
        raise LabError(f"{what} failed with exit code {code} (log {target.log_path}):\n{tail}")


def _chroot_logged(target: FreeswitchBuild, root: Path, what: str, argv: list[str]) -> None:
    _run_logged(target, what, [*_NICE, "chroot", str(root), *argv], env=dict(_CHROOT_ENV))


def _mount_proc(target: FreeswitchBuild, root: Path) -> None:
    (root / "proc").mkdir(exist_ok=True)
    _run_logged(target, "mount /proc", ["mount", "-t", "proc", "proc", str(root / "proc")])


def _umount_all(target: FreeswitchBuild, root: Path) -> None:
    for point in mounts_under(root):
        _run_logged(target, f"umount {point}", ["umount", "-l", str(point)])
