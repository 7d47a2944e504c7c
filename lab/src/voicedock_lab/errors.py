"""Errors of the lab PBX tooling."""

from __future__ import annotations

from voicedock.errors import VoicedockError


class LabError(VoicedockError):
    """The lab PBX could not be provisioned, configured, started or stopped."""
