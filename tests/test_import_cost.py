"""What loading a module costs: a node that only serves the API loads no speech pipeline."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

HEAVY = (
    "webrtcvad",
    "numpy",
    "voicedock.pipeline.dialogue.turn_engine",
    "voicedock.pipeline.hearing.vad",
)


@pytest.mark.parametrize(
    "module", ["voicedock.calls.engine", "voicedock.store", "voicedock.config"]
)
def test_module_loads_without_the_speech_pipeline(module: str) -> None:
    probe = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == []


def test_the_pipeline_names_still_load_on_use() -> None:
    from voicedock.pipeline import TurnEngine
    from voicedock.pipeline.dialogue.turn_engine import TurnEngine as Defined

    assert TurnEngine is Defined
