"""Where call recordings live and how long they stay (``[recordings]``).

A recorded call's file is ``<directory>/<organization id>/<call id>.<format>``; the call record
keeps the part under the directory (``Call.recording_path``), so ``GET /calls/{id}/recording``
finds it on the node that wrote it. ``sweep`` deletes files older than ``retention_days`` (the
service runs it hourly); a call whose file was swept answers 404 "recording deleted".
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from voicedock.aio import every
from voicedock.config import RecordingsSettings
from voicedock.domain.assistant_config import AssistantConfig
from voicedock.domain.ids import is_call_id
from voicedock.validation import is_token

log = logging.getLogger("voicedock.calls")

SWEEP_INTERVAL_S = 3600.0
MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac"}


def wants_recording(assistant_config: AssistantConfig) -> bool:
    """The call's resolved configuration asks for a recording (assistant or per call)."""
    return assistant_config.record is True


def recording_name(settings: RecordingsSettings, organization_id: str, call_id: str) -> str:
    """The file's path under the directory: ``<organization>/<call>.<format>``."""
    if not is_token(organization_id) or not is_call_id(call_id):
        raise ValueError("not an organization or call id")
    return f"{organization_id}/{call_id}.{settings.format}"


def recording_file(settings: RecordingsSettings, name: str) -> Path | None:
    """The stored name's file, or ``None`` when recordings are off or the name leads outside
    the directory."""
    if not settings.directory:
        return None
    root = Path(settings.directory).resolve()
    path = (root / name).resolve()
    return path if path.is_relative_to(root) and path != root else None


def find_recording(settings: RecordingsSettings, call_id: str) -> Path | None:
    """A call's recording in the directory, whatever organization it is under; ``None``:
    not there (recordings off, not recorded, swept, or another node's)."""
    if not settings.directory or not is_call_id(call_id):
        return None
    root = Path(settings.directory)
    for fmt in MEDIA_TYPES:
        found = sorted(root.glob(f"*/{call_id}.{fmt}"))
        if found:
            return found[0]
    return None


def media_type(name: str) -> str:
    return MEDIA_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")


def sweep(settings: RecordingsSettings, now: float | None = None) -> int:
    """Delete recordings older than ``retention_days``; returns how many went."""
    if not settings.directory or settings.retention_days <= 0:
        return 0
    root = Path(settings.directory)
    if not root.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - settings.retention_days * 86_400
    removed = 0
    for path in root.glob("*/*"):
        try:
            if path.suffix.lstrip(".") in MEDIA_TYPES and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError as exc:
            log.warning("recording not swept: %s", type(exc).__name__)
    if removed:
        log.info("recordings: %d older than %d days deleted", removed, settings.retention_days)
    return removed


async def sweep_periodically(
    settings: RecordingsSettings, interval: float = SWEEP_INTERVAL_S
) -> None:
    """``sweep`` now and every ``interval`` seconds (off the event loop), until cancelled."""
    await every(interval, lambda: asyncio.to_thread(sweep, settings))
