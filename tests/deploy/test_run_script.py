"""``scripts/run.sh --pbx freeswitch`` as a user runs it, for real: it brings up a lab
FreeSWITCH (its own instance, free ports), checks it with ``voicedock doctor``, prints an API
key and a curl, and serves; the printed curl places a call to the lab's demo party, which
hears the assistant's greeting (its recording is not silent), then asks for an appointment: its
words reach the call's transcript through the real offline speech recognition, and FreeSWITCH
shows the call's channel.
Only the ports, the database and the lab instance name come from the environment."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import read_recording, wait_finished
from freeswitch_lab.test_rest_calls import _rms
from process_helpers import free_port
from voicedock_lab.config import find_project_root
from voicedock_lab.freeswitch import LabFreeswitch, remove_instance
from voicedock_lab.freeswitch_config import DEMO, FreeswitchLabSettings

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(300)]

PROJECT = find_project_root(Path(__file__))
PARTY = DEMO  # run.sh's curl calls the demo party, on either lab
_WORD = re.compile(r"[a-z]+")


class RunScript:
    """The script's process; a thread reads everything it prints (the service logs there too:
    a pipe nobody reads would block the service once full) and keeps it for failure messages."""

    def __init__(self, process: subprocess.Popen[str], port: int, instance: str) -> None:
        self.process, self.port, self.instance = process, port, instance
        self.output: list[str] = []
        self._printed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with contextlib.suppress(ValueError, OSError):  # closed by the fixture
            for line in self.process.stdout:
                with self._printed:
                    self.output.append(line)
                    self._printed.notify_all()
        with self._printed:
            self._printed.notify_all()

    def read_until(self, marker: str, within: float) -> str:
        deadline = time.monotonic() + within
        with self._printed:
            while not any(marker in line for line in self.output):
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    break
                self._printed.wait(min(left, 0.5))
            printed = "".join(self.output)
        if marker not in printed:
            raise AssertionError(f"scripts/run.sh never printed {marker!r}:\n{printed}")
        return printed

    def stop_reading(self) -> None:
        self._reader.join(timeout=5)  # the end of the output, once every writer is gone
        if self.process.stdout is not None:
            self.process.stdout.close()

    def log_tail(self, lines: int = 60) -> str:
        with self._printed:
            return "".join(self.output[-lines:])

    def request(self, method: str, path: str, key: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())

    def wait_status(self, key: str, call_id: str, statuses: tuple[str, ...], within: float) -> Any:
        deadline = time.monotonic() + within
        while True:
            call = self.request("GET", f"/calls/{call_id}", key)
            if call["status"] in statuses or time.monotonic() > deadline:
                return call
            time.sleep(0.2)


@pytest.fixture
def run_script(freeswitch_lab: LabFreeswitch, tmp_path: Path) -> Iterator[RunScript]:
    """``scripts/run.sh --pbx freeswitch`` running; stopped, and its lab removed, after."""
    del freeswitch_lab  # only for its build (or its skip / CI failure when it cannot be built)
    port, instance = free_port(), f"pytest-run-{os.getpid()}"
    env = {
        **os.environ,
        "VOICEDOCK_SERVER__PORT": str(port),
        "VOICEDOCK_DATABASE__URL": f"sqlite:///{tmp_path / 'run.db'}",
        "VOICEDOCK_PBX__FREESWITCH__MEDIA_PORT": str(free_port()),
        "VOICEDOCK_LAB_INSTANCE": instance,
        "VOICEDOCK_LAB_FREE_PORTS": "1",
    }
    process = subprocess.Popen(
        ["bash", "scripts/run.sh", "--pbx", "freeswitch"],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lab = LabFreeswitch(FreeswitchLabSettings(instance=instance))
    script = RunScript(process, port, instance)
    try:
        yield script
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        lab = lab.saved_or_self()
        lab.down()
        remove_instance(lab)
        script.stop_reading()


def call_legs(lab: LabFreeswitch, call_id: str, within: float) -> list[str]:
    """The channels to the party that carry ``call_id``. FreeSWITCH's ``show channels`` reads
    its core database, written behind the channels' events by a background thread: a channel
    already answered may show there a moment later, or first without its destination."""
    deadline = time.monotonic() + within
    while True:
        channels = json.loads(lab.api("show channels as json")).get("rows") or []
        to_party = [c["uuid"] for c in channels if c.get("dest") == PARTY]  # ours, the carrier's
        legs = [
            u for u in to_party if lab.api(f"uuid_getvar {u} voicedock_call_id").strip() == call_id
        ]
        if legs or time.monotonic() > deadline:
            return legs
        time.sleep(0.2)


def test_run_script_with_freeswitch_places_the_printed_call(run_script: RunScript) -> None:
    printed = run_script.read_until("then follow it with", within=200)
    assert "OK" in printed.splitlines()  # voicedock doctor on the lab FreeSWITCH
    key = re.search(r"Bearer (vd_\S+)\"", printed)
    body = re.search(r"-d '(\{.*\})'", printed)
    assert key is not None, printed
    assert body is not None, printed
    call_body = json.loads(body.group(1))
    assert call_body["destination"] == PARTY
    lab = LabFreeswitch(FreeswitchLabSettings(instance=run_script.instance)).saved_or_self()
    deadline = time.monotonic() + 60
    while True:  # the API comes up once the script execs voicedock serve
        try:
            placed = run_script.request("POST", "/calls/outbound", key.group(1), call_body)
            break
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, run_script.log_tail()
            time.sleep(0.5)
    call_id = placed["call_id"]
    call = run_script.wait_status(key.group(1), call_id, ("in-progress", "ended", "failed"), 30)
    assert call["status"] == "in-progress", (call, run_script.log_tail())
    # FreeSWITCH has the call: a channel to the party, carrying the engine's call id.
    [leg] = call_legs(lab, call_id, within=10)
    sip_call_id = lab.api(f"uuid_getvar {leg} sip_call_id").strip()
    # The party listens to the greeting, then says "I would like to book an appointment on
    # Monday.": the service's offline recognizer writes it into the call's transcript.
    said: set[str] = set()
    deadline = time.monotonic() + 60
    while not {"appointment", "monday"} <= said:
        assert time.monotonic() < deadline, run_script.request(
            "GET", f"/calls/{call_id}", key.group(1)
        )
        time.sleep(0.5)
        messages = run_script.request("GET", f"/calls/{call_id}", key.group(1))["messages"]
        said = {
            w for m in messages if m["role"] == "user" for w in _WORD.findall(m["content"].lower())
        }
    end = {"type": "end-call"}
    run_script.request("POST", f"/calls/{call_id}/control", key.group(1), end)
    # end-call lets the reply being spoken finish first, for at most end_call_grace_s (30 s)
    ended = run_script.wait_status(key.group(1), call_id, ("ended", "failed"), 45)
    assert ended["status"] == "ended", (ended, run_script.log_tail())
    recording = lab.recordings_dir / f"{PARTY}-{sip_call_id}.wav"
    # The party's side closes its recording a moment after the call ended.
    assert _rms(read_recording(wait_finished(recording))) > 300, "the party heard silence"
