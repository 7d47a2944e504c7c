"""The real offline speech engines, for the tests that use them."""

from __future__ import annotations

import importlib.util

import pytest

# Skips a test when faster-whisper or Piper is not installed.
needs_offline_engines = pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None or importlib.util.find_spec("piper") is None,
    reason="offline speech packages not installed",
)
