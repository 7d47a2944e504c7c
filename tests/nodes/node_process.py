"""A voicedock node as a process of its own, so that a test can start several and ``kill -9`` one.

``python -m nodes.node_process <config.toml>`` (``tests`` on the path) runs what
``voicedock serve --config`` runs (``create_app`` on ``[server]`` host and port) with fake speech
providers registered under the name ``node-fake`` (``[speech] stt``/``tts``/``llm``): a scripted
STT, the echo LLM and ``ToneTts``; and ``node-hearing`` (``[speech] stt``): an STT that hears the
lab parties' sentence in every utterance, so that talking parties get answers (``tests/soak``).
``node_process`` starts it from a test and always stops it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fakes.world import ACME
from freeswitch_lab.lab_service import ToneTts
from pipeline.fakes import FakeLlm, FakeStt
from process_helpers import logged_process
from voicedock import logs
from voicedock.api import serve
from voicedock.api.api_keys import issue_api_key
from voicedock.api.app import create_app
from voicedock.cli import freeze_startup_heap
from voicedock.config import load_settings
from voicedock.pipeline.providers.registry import llm_registry, stt_registry, tts_registry
from voicedock.store import open_store

SPEECH = "node-fake"
HEARING = "node-hearing"
HEARD = "I would like to book an appointment on Monday."

_TESTS = Path(__file__).resolve().parents[1]


async def acme_api_key(database_url: str) -> str:
    """An API key of ACME (the organization of ``fakes.world``'s numbers), issued in the
    nodes' database, for a test to call their REST API."""
    store = await open_store(database_url)
    try:
        key, _ = await issue_api_key(store, ACME)
    finally:
        await store.aclose()
    return key


class HearingStt(FakeStt):
    """Hears the lab parties' sentence (``HEARD``) in every utterance."""

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        await super().transcribe(pcm, sample_rate)
        self.calls.clear()  # a long call transcribes hundreds of utterances
        return HEARD


def process_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(_TESTS), os.environ.get("PYTHONPATH", "")]),
    }


@contextmanager
def node_process(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The node, its output in ``log``; stopped (INT, then KILL) on exit."""
    args = [sys.executable, "-m", "nodes.node_process", str(config)]
    with logged_process(args, log, env=process_env()) as process:
        yield process


def main(config: str) -> None:
    handler = logging.StreamHandler()  # as ``voicedock serve`` logs
    logs.configure(handler)
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    stt_registry.register(SPEECH, lambda _c, _e: FakeStt())
    stt_registry.register(HEARING, lambda _c, _e: HearingStt())
    llm_registry.register(SPEECH, lambda _c, _e: FakeLlm())
    tts_registry.register(SPEECH, lambda _c, _e: ToneTts(8000))
    settings = load_settings(config)
    app = create_app(settings)
    app.on_startup.append(freeze_startup_heap)
    serve.run(app, host=settings.server.host, port=settings.server.port)


if __name__ == "__main__":
    main(sys.argv[1])
