"""The Whisper weight loader never deletes a directory voicedock did not make."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicedock.pipeline.providers.base import ProviderUnavailableError
from voicedock.pipeline.providers.whisper import weights as whisper_weights
from voicedock.pipeline.providers.whisper.weights import ensure_model_dir

pytestmark = pytest.mark.unit


def _fake_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny stand-in weight files whose digest is the pinned one."""
    source = tmp_path / "packages"
    source.mkdir()
    files = {"model.bin.part1": b"model-", "model.bin.part2": b"bytes"}
    files |= {name: b"{}" for name in whisper_weights.SIDE_FILES}
    for name, data in files.items():
        (source / name).write_bytes(data)
    monkeypatch.setattr(whisper_weights, "packaged_files", lambda: {n: source / n for n in files})
    import hashlib

    digest = hashlib.sha256(b"model-bytes").hexdigest()
    monkeypatch.setattr(whisper_weights, "MODEL_SHA256", digest)


def test_a_directory_with_someone_else_s_files_is_refused_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_weights(tmp_path, monkeypatch)
    data = tmp_path / "recordings"
    data.mkdir()
    (data / "call.wav").write_bytes(b"RIFF")
    with pytest.raises(ProviderUnavailableError, match="did not write; refusing"):
        ensure_model_dir(data)
    assert [p.name for p in data.iterdir()] == ["call.wav"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".whisper-")]


def test_a_file_is_refused_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_weights(tmp_path, monkeypatch)
    target = tmp_path / "voicedock.db"
    target.write_text("data")
    with pytest.raises(ProviderUnavailableError, match="not a directory voicedock made"):
        ensure_model_dir(target)
    assert target.read_text() == "data"


def test_an_empty_or_own_directory_is_filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_weights(tmp_path, monkeypatch)
    empty = tmp_path / "cache"
    empty.mkdir()
    assert (ensure_model_dir(empty) / "model.bin").read_bytes() == b"model-bytes"
    # An older model voicedock assembled (its stamp, another digest) is replaced.
    (empty / ".voicedock-verified").write_text("an older model")
    (empty / "model.bin").write_bytes(b"old")
    assert (ensure_model_dir(empty) / "model.bin").read_bytes() == b"model-bytes"
