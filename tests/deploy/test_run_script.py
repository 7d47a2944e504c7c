"""``scripts/run.sh --pbx freeswitch`` as a user runs it, for real: it brings up a lab
FreeSWITCH (its own instance, free ports), checks it with ``voicedock doctor``, prints an API
key, the commands that place a call and follow it, and serves. The printed commands, run in a
shell as printed, place a call to the lab's demo party and show that call; the party hears the
assistant's greeting (its recording is not silent), then asks for an appointment: its words
reach the call's transcript through the real offline speech recognition, FreeSWITCH shows the
call's channel, and the demo's rule-based brain answers the keyword. With the README's
variables for a real model, pointed at an OpenAI-compatible stand-in, the party's words reach
that model and its answer is the assistant's.
Only the ports, the database, the lab instance name and the model's address and key come from
the environment."""

from __future__ import annotations

import asyncio
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import read_recording, wait_finished
from fakes.llm_standin import LlmStandIn
from freeswitch_lab.test_rest_calls import _rms
from process_helpers import free_port
from voicedock_lab.config import find_project_root
from voicedock_lab.freeswitch import LabFreeswitch, remove_instance
from voicedock_lab.freeswitch_config import DEMO, FreeswitchLabSettings

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(300)]

PROJECT = find_project_root(Path(__file__))
PARTY = DEMO  # run.sh's curl calls the demo party, on either lab
_WORD = re.compile(r"[a-z]+")
# The example configuration's assistant: its instructions, and the rule-based brain's answer
# to the demo party's appointment request (it repeats what it understood).
SYSTEM_PROMPT = "You are a friendly receptionist for Acme Corp."
MODEL_REPLY = "Monday at ten works, I have noted it."


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
def start_run_script(
    freeswitch_lab: LabFreeswitch, tmp_path: Path
) -> Iterator[Callable[[dict[str, str]], RunScript]]:
    """Starts ``scripts/run.sh --pbx freeswitch`` (once) with more environment; stopped, and
    its lab removed, after."""
    del freeswitch_lab  # only for its build (or its skip / CI failure when it cannot be built)
    port, instance = free_port(), f"pytest-run-{os.getpid()}"
    started: list[RunScript] = []

    def start(more: dict[str, str]) -> RunScript:
        assert not started, "one run.sh per test"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VOICEDOCK_SPEECH__")},
            "VOICEDOCK_SERVER__PORT": str(port),
            "VOICEDOCK_DATABASE__URL": f"sqlite:///{tmp_path / 'run.db'}",
            "VOICEDOCK_PBX__FREESWITCH__MEDIA_PORT": str(free_port()),
            "VOICEDOCK_LAB_INSTANCE": instance,
            "VOICEDOCK_LAB_FREE_PORTS": "1",
            **more,
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
        started.append(RunScript(process, port, instance))
        return started[0]

    try:
        yield start
    finally:
        for script in started:
            os.killpg(script.process.pid, signal.SIGTERM)
            try:
                script.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(script.process.pid, signal.SIGKILL)
                script.process.wait()
            lab = LabFreeswitch(FreeswitchLabSettings(instance=instance)).saved_or_self()
            lab.down()
            remove_instance(lab)
            script.stop_reading()


@contextlib.contextmanager
def model_standin(reply: str) -> Iterator[LlmStandIn]:
    """An OpenAI-compatible model on 127.0.0.1, served by an event loop of its own thread (the
    test itself blocks on the script's output and on HTTP)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def started() -> LlmStandIn:
        return await LlmStandIn(reply=reply).__aenter__()

    try:
        standin = asyncio.run_coroutine_threadsafe(started(), loop).result(timeout=10)
        try:
            yield standin
        finally:
            asyncio.run_coroutine_threadsafe(standin.__aexit__(None), loop).result(timeout=10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def readme_model_variables() -> dict[str, str]:
    """The ``export VOICEDOCK_SPEECH__...=...`` lines of README.md's quick start."""
    readme = (PROJECT / "README.md").read_text()
    found = re.findall(r"^export (VOICEDOCK_SPEECH__\w+)=(\S+)", readme, re.M)
    return dict(found)


def place_the_printed_call(script: RunScript, printed: str) -> tuple[str, str, dict[str, Any]]:
    """Runs the printed commands in a shell as printed: the one that places the call (and
    keeps its id), then the one that follows it. Returns the key, the call's id and what the
    follow command answered."""
    key = re.search(r"Bearer (vd_\S+)\"", printed)
    assert key is not None, printed
    place = re.search(r"^  answer=.*?^  call_id=[^\n]*\n", printed, re.M | re.S)
    follow = re.search(r"^then follow that call: (curl .*)$", printed, re.M)
    assert place is not None, printed
    assert follow is not None, printed
    body = re.search(r"-d '(\{.*\})'", place.group(0))
    assert body is not None, printed
    assert json.loads(body.group(1))["destination"] == PARTY
    deadline = time.monotonic() + 60
    while True:  # the API comes up once the script execs voicedock serve
        try:
            script.request("GET", "/calls", key.group(1))
            break
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, script.log_tail()
            time.sleep(0.5)
    shell = f'{place.group(0)}echo "placed $call_id"\n{follow.group(1)}\n'
    done = subprocess.run(
        ["bash", "-e", "-c", shell], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    answer, placed, followed = done.stdout.split("\n", 2)
    call_id = placed.removeprefix("placed ")
    assert json.loads(answer)["call_id"] == call_id, done.stdout
    return key.group(1), call_id, json.loads(followed)


def wait_said(
    script: RunScript, key: str, call_id: str, role: str, said: Callable[[str], bool]
) -> None:
    """Until the call's transcript has a message of ``role`` that ``said`` accepts."""
    deadline = time.monotonic() + 60
    while True:
        messages = script.request("GET", f"/calls/{call_id}", key)["messages"]
        if any(said(m["content"]) for m in messages if m["role"] == role):
            return
        assert time.monotonic() < deadline, (role, messages)
        time.sleep(0.5)


def asks_for_an_appointment(text: str) -> bool:
    return {"appointment", "monday"} <= set(_WORD.findall(text.lower()))


def repeats_the_appointment_request(text: str) -> bool:
    return text.startswith("I understood:") and asks_for_an_appointment(text)


def end_call(script: RunScript, key: str, call_id: str) -> None:
    script.request("POST", f"/calls/{call_id}/control", key, {"type": "end-call"})
    # end-call lets the reply being spoken finish first, for at most end_call_grace_s (30 s)
    ended = script.wait_status(key, call_id, ("ended", "failed"), 45)
    assert ended["status"] == "ended", (ended, script.log_tail())


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


def test_run_script_with_freeswitch_places_the_printed_call(
    start_run_script: Callable[[dict[str, str]], RunScript],
) -> None:
    run_script = start_run_script({})
    printed = run_script.read_until("then follow that call", within=200)
    assert "OK" in printed.splitlines()  # voicedock doctor on the lab FreeSWITCH
    assert "offline rule-based demo" in printed  # what answers, said before the call
    key, call_id, followed = place_the_printed_call(run_script, printed)
    assert followed["id"] == call_id  # the follow command shows the call just placed
    assert followed["direction"] == "outbound"
    lab = LabFreeswitch(FreeswitchLabSettings(instance=run_script.instance)).saved_or_self()
    call = run_script.wait_status(key, call_id, ("in-progress", "ended", "failed"), 30)
    assert call["status"] == "in-progress", (call, run_script.log_tail())
    # FreeSWITCH has the call: a channel to the party, carrying the engine's call id.
    [leg] = call_legs(lab, call_id, within=10)
    sip_call_id = lab.api(f"uuid_getvar {leg} sip_call_id").strip()
    # The party listens to the greeting, then says "I would like to book an appointment on
    # Monday.": the service's offline recognizer writes it into the call's transcript.
    wait_said(run_script, key, call_id, "user", asks_for_an_appointment)
    # The rule-based brain answers by repeating what it understood, as README.md says.
    wait_said(run_script, key, call_id, "assistant", repeats_the_appointment_request)
    end_call(run_script, key, call_id)
    recording = lab.recordings_dir / f"{PARTY}-{sip_call_id}.wav"
    # The party's side closes its recording a moment after the call ended.
    assert _rms(read_recording(wait_finished(recording))) > 300, "the party heard silence"


def test_run_script_with_the_readmes_model_variables_talks_to_that_model(
    start_run_script: Callable[[dict[str, str]], RunScript],
) -> None:
    variables = readme_model_variables()
    assert set(variables) == {
        "VOICEDOCK_SPEECH__LLM",
        "VOICEDOCK_SPEECH__OPENAI_BASE_URL",
        "VOICEDOCK_SPEECH__OPENAI_API_KEY",
    }
    with model_standin(MODEL_REPLY) as model:
        run_script = start_run_script(
            {
                **variables,  # the LLM's name as README.md gives it; the address and key ours
                "VOICEDOCK_SPEECH__OPENAI_BASE_URL": model.base_url,
                "VOICEDOCK_SPEECH__OPENAI_API_KEY": "sk-readme-test",
            }
        )
        printed = run_script.read_until("then follow that call", within=200)
        assert "rule-based" not in printed
        key, call_id, _ = place_the_printed_call(run_script, printed)
        wait_said(run_script, key, call_id, "user", asks_for_an_appointment)
        # The model's answer is the assistant's.
        wait_said(run_script, key, call_id, "assistant", lambda text: MODEL_REPLY in text)
        end_call(run_script, key, call_id)
        asked = [r for r in model.requests if asks_for_an_appointment(r.last_user_text)]
    assert asked, [r.body for r in model.requests]
    assert SYSTEM_PROMPT in (asked[0].system_prompt or "")
    assert asked[0].model == "gpt-4o-mini"
    assert asked[0].authorization == "Bearer sk-readme-test"
