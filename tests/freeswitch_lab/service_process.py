"""The service on the lab FreeSWITCH as a process of its own, so that a test can ``kill -9`` it.

``python -m freeswitch_lab.service_process <lab.json> <database> <port> resume|no-resume``
(``tests`` on the path) runs what ``voicedock serve`` runs (``create_app`` on
127.0.0.1:<port>) with the settings of the ``live`` fixture (``lab_settings``; ``[calls]
resume_after_restart`` as told) and fake providers registered in the process: a scripted STT,
the echo LLM and ``ToneTts`` (the party's recording shows when the assistant spoke).
``service_process`` starts it from a test and always stops it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from freeswitch_lab.lab_service import ToneTts, lab_settings
from pipeline.fakes import FakeLlm, FakeStt
from process_helpers import logged_process
from voicedock import logs
from voicedock.api import serve
from voicedock.api.app import create_app
from voicedock.pipeline.providers.registry import llm_registry, stt_registry, tts_registry
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import FreeswitchLabSettings

SPEECH = "lab-process"
CALLS_PER_NUMBER = 4  # a test keeps several calls live at once
TONE_MS_PER_CHAR = 100  # the greeting "Hi!" 0.3 s, the resume line about 5 s

_TESTS = Path(__file__).resolve().parents[1]


@contextmanager
def service_process(
    lab: LabFreeswitch, database: Path, port: int, log: Path, *, resume: bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    """The service process, its output in ``log``; stopped (INT, then KILL) on exit.
    ``resume``: ``[calls] resume_after_restart``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(_TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    args = [sys.executable, "-m", "freeswitch_lab.service_process", str(lab.saved_path)]
    args += [str(database), str(port), "resume" if resume else "no-resume"]
    with logged_process(args, log, env=env) as process:
        yield process


def main(saved: str, database: str, port: str, resume: str) -> None:
    handler = logging.StreamHandler()  # as ``voicedock serve`` logs
    logs.configure(handler)
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    stt_registry.register(SPEECH, lambda _c, _e: FakeStt())
    llm_registry.register(SPEECH, lambda _c, _e: FakeLlm())
    tts_registry.register(SPEECH, lambda _c, _e: ToneTts(8000, ms_per_char=TONE_MS_PER_CHAR))
    lab = LabFreeswitch(FreeswitchLabSettings.from_json(Path(saved).read_text()))
    settings = lab_settings(lab, Path(database), SPEECH)
    for number in settings.numbers:
        number.max_concurrent_calls = CALLS_PER_NUMBER
    settings.calls.resume_after_restart = resume == "resume"
    serve.run(create_app(settings), host="127.0.0.1", port=int(port))


if __name__ == "__main__":
    main(*sys.argv[1:5])
