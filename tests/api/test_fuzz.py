"""Schemathesis fuzzes every documented operation of a real app (127.0.0.1, port 0, SQLite,
FakePbx): no input may produce a 5xx."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from api.conftest import start_api
from fakes.world import ACME
from voicedock.api.api_keys import issue_api_key

pytestmark = pytest.mark.unit

MAX_EXAMPLES = int(os.environ.get("VOICEDOCK_FUZZ_EXAMPLES", "30"))


def _schemathesis() -> str:
    found = Path(sys.executable).with_name("schemathesis")
    if found.exists():
        return str(found)
    which = shutil.which("schemathesis")
    if which is None:
        pytest.skip("schemathesis is not installed")
    return which


async def test_no_server_errors_under_fuzzing(tmp_path: Path) -> None:
    client, service, _ = await start_api(f"sqlite:///{tmp_path / 'fuzz.db'}")
    try:
        key, _ = await issue_api_key(service.store, ACME)
        url = f"http://127.0.0.1:{client.port}/openapi.json"
        proc = await asyncio.create_subprocess_exec(
            _schemathesis(), "run", url,
            "--checks", "not_a_server_error",
            # A live call's event stream only ends with the call: every request for one would
            # wait out --request-timeout. Its own tests are in test_call_events_api.py.
            "--exclude-path-regex", "/events$",
            "--max-examples", str(MAX_EXAMPLES),
            "--header", f"Authorization: Bearer {key}",
            "--seed", "20251213",
            "--generation-database", "none",
            "--request-timeout", "10",
            "--no-color",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=100)
    finally:
        await client.close()
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    assert "passed" in text
