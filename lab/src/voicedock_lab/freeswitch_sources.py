"""Where the lab FreeSWITCH's five source archives come from.

In this order:

1. the folder ``$VOICEDOCK_FREESWITCH_SOURCES`` names (or the one a caller gives);
2. ``../shared/freeswitch`` beside the project (the project's own checkouts and CI have it; its
   README says what the archives are and how they build);
3. the pinned upstream archives (``PINNED``), downloaded once into
   ``<cache>/freeswitch-sources/``: each is checked against the SHA-256 recorded here before it
   is kept, and again whenever it is used.

Where none of them can be had (no folder, the network closed), one ``LabError`` says what to
do: put the five files (names, addresses and sums in the message) in a folder and set
``VOICEDOCK_FREESWITCH_SOURCES``, or place them in ``../shared/freeswitch``.

The pinned archives hold the revisions ``../shared/freeswitch`` holds: FreeSWITCH's own release
archive of 1.11.1 (tag v1.11.1, already bootstrapped, its ``bootstrap.sh`` renamed
``rebootstrap.sh``; the sum is the one Homebrew's formula records for that address) and GitHub's
archives of the four other commits (the sum of ``git archive --prefix=<repo>-<commit>/
<commit> | gzip -cn``, the form GitHub serves: the same command gives the sum Homebrew records
for GitHub's archive of sofia-sip v1.13.17; the trees are those of ``../shared/freeswitch``
byte for byte, under another folder name). Being other files, they build their own cache entry.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from voicedock_lab.errors import LabError
from voicedock_lab.freeswitch_build import FreeswitchSources, default_cache_dir
from voicedock_lab.provision import exclusive_lock

DOWNLOADS_NAME = "freeswitch-sources"
DOWNLOAD_TIMEOUT = 30.0  # seconds without a byte before a download is given up
_BLOCK = 1 << 20


@dataclass(frozen=True)
class PinnedSource:
    """One upstream archive: what it is, the file it is kept as, where it is, its SHA-256."""

    name: str  # one of freeswitch_build.SOURCE_NAMES, in that order in PINNED
    file: str  # "<name>-<revision>.tar.gz": FreeswitchSources.find takes a folder of these
    url: str
    sha256: str


def _github(repo: str, commit: str, sha256: str) -> PinnedSource:
    name = repo.rsplit("/", 1)[1]
    url = f"https://github.com/{repo}/archive/{commit}.tar.gz"
    return PinnedSource(name, f"{name}-{commit}.tar.gz", url, sha256)


PINNED: tuple[PinnedSource, ...] = (
    PinnedSource(
        "freeswitch",
        "freeswitch-1.11.1.-release.tar.gz",
        "https://files.freeswitch.org/releases/freeswitch/freeswitch-1.11.1.-release.tar.gz",
        "c0ce4cb91f9d8c9c7c8e45e0f5064104a1f710863775364a227cfdc305fec98e",
    ),
    _github(
        "freeswitch/sofia-sip",
        "7333682a297f28130ff46d5ef0f9e2f72adca0e8",
        "baa3b2dff174c96a00d726af23ec2c7c8a73943e8ffe228ca49551d0a911e7c1",
    ),
    _github(
        "freeswitch/spandsp",
        "0c7bcebef4f057b99832a338aafab7e379ef1395",
        "9dec8518c06806509d739f8dbc563ff6a9def726d9924c07a27acd636ad9035f",
    ),
    _github(
        "amigniter/mod_audio_stream",
        "ec2a781026a1c09b0c3a6161b8b896f0b9305922",
        "d8fe0a8eb245809db900eba11062e03f1f0f027b69aaf5c41cf9ec6ecec0af83",
    ),
    _github(
        "amigniter/libwsc",  # mod_audio_stream's submodule libs/libwsc at this commit
        "09d18e5db9243a996692261a7a0839c9c346bc47",
        "14e6f0e99e67595eee131a00cf9e2217e6ff2f11a236df8eb96dc3f1df3f01e1",
    ),
)


def configured_sources_dir() -> Path | None:
    """``$VOICEDOCK_FREESWITCH_SOURCES``, when set."""
    configured = os.environ.get("VOICEDOCK_FREESWITCH_SOURCES")
    return Path(configured) if configured else None


def shared_sources_dir() -> Path | None:
    """``../shared/freeswitch`` beside the project (None when no project is found)."""
    from voicedock_lab.config import find_project_root

    try:
        root = find_project_root()
    except LabError:
        return None
    return root.parent / "shared" / "freeswitch"


def downloads_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / DOWNLOADS_NAME


def locate(
    sources_dir: Path | None = None,
    cache_dir: Path | None = None,
    *,
    download: bool = True,
    pinned: tuple[PinnedSource, ...] = PINNED,
    log: bool = True,
) -> FreeswitchSources:
    """The archives to build from: the given or configured folder, ``../shared/freeswitch``,
    else the pinned downloads (fetched now unless ``download`` is False)."""
    chosen = sources_dir or configured_sources_dir()
    if chosen is not None:
        return FreeswitchSources.find(chosen)
    shared = shared_sources_dir()
    if shared is not None and shared.is_dir():
        return FreeswitchSources.find(shared)
    return pinned_sources(downloads_dir(cache_dir), pinned, download=download, log=log)


def pinned_sources(
    directory: Path,
    pinned: tuple[PinnedSource, ...] = PINNED,
    *,
    download: bool = True,
    log: bool = True,
) -> FreeswitchSources:
    """The pinned archives in ``directory``, each with its recorded sum; a missing one (or one
    with another sum) is downloaded when ``download`` is set."""
    directory.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(directory / ".lock"):  # two test workers download once
        for pin in pinned:
            path = directory / pin.file
            if path.is_file() and _sha256_of(path) == pin.sha256:
                continue
            path.unlink(missing_ok=True)
            if not download:
                why = "they are not downloaded yet (`voicedock lab up --pbx freeswitch` does it)"
                raise LabError(not_found_message(pinned, why))
            _download(pin, path, pinned, log=log)
    return FreeswitchSources({pin.name: directory / pin.file for pin in pinned})


def not_found_message(pinned: tuple[PinnedSource, ...], why: str) -> str:
    """What to do when no source archives can be had, with the files that would do."""
    shared = shared_sources_dir() or Path("../shared/freeswitch")
    files = "\n".join(f"  {pin.file}\n    {pin.url}\n    sha256 {pin.sha256}" for pin in pinned)
    return (
        f"FreeSWITCH sources not found: VOICEDOCK_FREESWITCH_SOURCES is not set, {shared} does "
        f"not exist, and the pinned upstream archives cannot be used: {why}.\n"
        "Download these files where the network is open, then set VOICEDOCK_FREESWITCH_SOURCES "
        f"to the folder holding them, or place them in {shared}:\n{files}"
    )


def _download(
    pin: PinnedSource, path: Path, pinned: tuple[PinnedSource, ...], *, log: bool
) -> None:
    """``pin.url`` into ``path``, kept only if its SHA-256 is the pinned one."""
    if log:
        print(f"[lab] downloading {pin.url}", file=sys.stderr, flush=True)
    partial = path.with_name(path.name + ".part")
    digest = hashlib.sha256()
    try:
        # The addresses are this module's own https ones (a test's loopback http ones).
        with (
            urllib.request.urlopen(pin.url, timeout=DOWNLOAD_TIMEOUT) as response,  # noqa: S310
            partial.open("wb") as out,
        ):
            for block in iter(lambda: response.read(_BLOCK), b""):
                digest.update(block)
                out.write(block)
    except OSError as exc:  # URLError, HTTPError, a timeout, a full disk
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise LabError(not_found_message(pinned, f"{pin.url}: {reason}")) from exc
    if digest.hexdigest() != pin.sha256:
        partial.unlink()
        raise LabError(
            f"{pin.url} served a file whose SHA-256 is {digest.hexdigest()}, not the pinned "
            f"{pin.sha256}; it was not kept. If upstream replaced the archive, place a checked "
            "copy of the sources in a folder and set VOICEDOCK_FREESWITCH_SOURCES."
        )
    partial.replace(path)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
