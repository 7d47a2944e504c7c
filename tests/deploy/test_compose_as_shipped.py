"""docker/compose.yaml's voicedock service, run as shipped, outside Docker, for real.

The compose file and the image are taken as they are: the voicedock service's ``environment``
(interpolated like ``docker compose`` does, with test secrets), the config file mounted at
/etc/voicedock/voicedock.toml (mapped to its source in the repository), the Dockerfile's ENV
and ENTRYPOINT/CMD. Only the addresses change: the compose services' host names become
127.0.0.1 with the ports of the lab Asterisk (which stands in for the compose ``asterisk``
service; its config comes from the same templates) and of the session's PostgreSQL (prepared
from the compose ``postgres`` service's environment, as the postgres image does). Then, as real
subprocesses: ``voicedock doctor``, ``voicedock migrate``, ``voicedock keys create`` and the
image's command (``voicedock serve``); a call placed through REST to the lab's speaking party
must talk: the party's words reach the transcript and the party hears the first message.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from deploy.shipped import (
    CONFIG_IN_CONTAINER,
    INSTALL_SPEECH,
    Dockerfile,
    bind_mounts,
    compose,
    service_environment,
)
from e2e.audio_helpers import (
    SILENT_PARTY,
    UTTERANCE_PARTY,
    new_recording,
    read_recording,
    require_offline_speech,
    speech_seconds,
    transcribe,
    words,
)
from pg_server import free_port
from process_helpers import logged_process
from voicedock.config import default_node_id, load_settings
from voicedock.pbx.asterisk.node_apps import node_app
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.postgres]

LOOPBACK = "127.0.0.1"
TERMINAL = ("ended", "failed")
# The lab's speaking party says this a few seconds after answering (dialplan/lab/README.md).
PARTY_WORDS = {"appointment", "monday"}
# Inside the compose network: the Asterisk service's HTTP (ARI, /media) and AMI ports (the
# entrypoint's HTTP_PORT/AMI_PORT defaults) and PostgreSQL's.
ASTERISK_HTTP, ASTERISK_AMI, POSTGRES_PORT = 8088, 5038, 5432


@dataclass(frozen=True)
class Deployment:
    env: dict[str, str]  # the process environment, as the container would have it
    command: list[str]  # the image's ENTRYPOINT + CMD
    workdir: Path
    api: str
    organization: str
    first_message: str
    uses_ami: bool  # AMI is connected only to originate through it (originate_via = "ami")

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def secrets(lab: LabAsterisk) -> dict[str, str]:
    """The variables the compose file requires (``${VAR:?...}``): the lab's credentials."""
    return {
        "ARI_PASSWORD": lab.ari_credentials[1],
        "AMI_SECRET": lab.ami_credentials[1],
        "POSTGRES_PASSWORD": "deploy-test-password",
    }


def remap_hosts(
    env: Mapping[str, str], addresses: Mapping[tuple[str, int], int], hosts: set[str]
) -> dict[str, str]:
    """``host:port`` of a compose service → 127.0.0.1:<port here>; a bare host name → 127.0.0.1.

    Only addresses change; every other byte of every value stays as shipped.
    """
    result: dict[str, str] = {}
    for key, value in env.items():
        for (host, port), here in addresses.items():
            value = re.sub(rf"(?<=[/@]){re.escape(host)}:{port}\b", f"{LOOPBACK}:{here}", value)
        if value in hosts or value == "0.0.0.0":
            value = LOOPBACK
        result[key] = value
    return result


async def prepare_postgres(server_dsn: str, postgres_env: Mapping[str, str]) -> None:
    """What the postgres image does with POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB."""
    user, database = postgres_env["POSTGRES_USER"], postgres_env["POSTGRES_DB"]
    password = postgres_env["POSTGRES_PASSWORD"].replace("'", "''")
    conn = await asyncpg.connect(server_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", user)
        verb = "ALTER" if exists else "CREATE"
        await conn.execute(f"{verb} ROLE \"{user}\" LOGIN PASSWORD '{password}'")
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        await conn.execute(f'CREATE DATABASE "{database}" OWNER "{user}"')
    finally:
        await conn.close()


@pytest.fixture
async def deployment(lab: LabAsterisk, postgres_server: str, tmp_path: Path) -> Deployment:
    stack = compose(secrets(lab))
    service = stack["services"]["voicedock"]
    image = Dockerfile()
    assert any(INSTALL_SPEECH in run for run in image.of("RUN")), "image lacks the speech engines"

    # Docker's precedence: the image's ENV, then the service's environment.
    env = {**image.env(), **service_environment(service)}
    for container_path, host_path in bind_mounts(service).items():
        env = {k: str(host_path) if v == container_path else v for k, v in env.items()}
    assert env.get("VOICEDOCK_CONFIG") == str(bind_mounts(service)[CONFIG_IN_CONTAINER])

    server_port = dsn_port(postgres_server)
    api_port = free_port()
    env = remap_hosts(
        env,
        {
            ("asterisk", ASTERISK_HTTP): lab.settings.http_port,
            ("postgres", POSTGRES_PORT): server_port,
        },
        hosts=set(stack["services"]),
    )
    # Ports the shipped files leave at their defaults (AMI 5038, the API's 8080 inside the
    # container): the lab's AMI port and a free port for the API here.
    for key, default in (
        ("VOICEDOCK_PBX__ASTERISK__AMI_PORT", ASTERISK_AMI),
        ("VOICEDOCK_SERVER__PORT", int(service["ports"][0].rsplit(":", 1)[1])),
    ):
        assert env.get(key, str(default)) == str(default), f"{key} is set by the compose file"
    env["VOICEDOCK_PBX__ASTERISK__AMI_PORT"] = str(lab.ami_port)
    env["VOICEDOCK_SERVER__PORT"] = str(api_port)

    # The rest of a container's environment: the image's binaries first on PATH (here the
    # venv's), and a home holding the assembled Whisper model (the image's /var/lib/voicedock).
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    env["HOME"] = os.environ.get("HOME", "/root")
    if "XDG_CACHE_HOME" in os.environ:
        env["XDG_CACHE_HOME"] = os.environ["XDG_CACHE_HOME"]

    settings = load_settings(None, env)  # loopback only, whatever the compose file says
    assert settings.server.host == LOOPBACK
    assert settings.pbx.asterisk.ari_url.startswith(f"http://{LOOPBACK}:")
    assert settings.pbx.asterisk.ami_host == LOOPBACK
    assert f"@{LOOPBACK}:{server_port}/" in settings.database.url

    await prepare_postgres(postgres_server, service_environment(stack["services"]["postgres"]))
    workdir = tmp_path / "workdir"  # the image's WORKDIR
    workdir.mkdir()
    config = tomllib.loads(Path(env["VOICEDOCK_CONFIG"]).read_text(encoding="utf-8"))
    assistant = config["assistants"][0]
    return Deployment(
        env=env,
        command=image.command(service),
        workdir=workdir,
        api=f"http://{LOOPBACK}:{api_port}",
        organization=assistant["organization"],
        first_message=assistant["first_message"],
        uses_ami=settings.pbx.asterisk.originate_via == "ami",
    )


def dsn_port(dsn: str) -> int:
    match = re.search(r"@[^:/]+:(\d+)/", dsn)
    assert match is not None, "the test PostgreSQL DSN names its port"
    return int(match.group(1))


def serving(deployment: Deployment, log: Path) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """The image's command as a subprocess; always stopped (SIGINT, then SIGKILL)."""
    return logged_process(deployment.command, log, env=deployment.env, cwd=deployment.workdir)


async def wait_healthy(
    http: aiohttp.ClientSession, api: str, process: subprocess.Popen[str], log: Path
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            async with http.get(f"{api}/health") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"serve did not answer /health within 60 s:\n{log.read_text()}")


async def wait_pbx_connected(
    http: aiohttp.ClientSession,
    lab: LabAsterisk,
    deployment: Deployment,
    process: subprocess.Popen[str],
    log: Path,
) -> None:
    """/health answers before the PBX links are up: wait until Asterisk sees them (voicedock's
    Stasis app registered over ARI and, when it originates through AMI, its AMI login). On the
    compose file's PostgreSQL the node runs its own application, named after its host."""
    app = node_app(lab.settings.app_name, default_node_id(), several_nodes=True)
    user, password = lab.ari_credentials
    auth = {"Authorization": aiohttp.encode_basic_auth(user, password)}
    ami_user = lab.ami_credentials[0]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        async with http.get(f"{lab.ari_url}/applications", headers=auth) as resp:
            apps = {a["name"] for a in await resp.json()} if resp.status == 200 else set()
        if app in apps and not deployment.uses_ami:
            return
        if app in apps:
            connected = await asyncio.to_thread(lab.cli, "manager show connected")
            if re.search(rf"^\s*{re.escape(ami_user)}\s", connected, re.MULTILINE):
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"voicedock's ARI/AMI links did not come up:\n{log.read_text()[-3000:]}")


async def get_json(http: aiohttp.ClientSession, url: str, key: str) -> Any:
    async with http.get(url, headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def post_json(http: aiohttp.ClientSession, url: str, key: str, body: object) -> Any:
    async with http.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


def transcript(call: Mapping[str, Any], role: str) -> list[dict[str, Any]]:
    """The call's final transcript messages of ``role``, in order."""
    found = [e["data"] for e in call["events"] if e["type"] == "transcript"]
    return [m for m in found if m["role"] == role]


@dataclass
class Api:
    http: aiohttp.ClientSession
    base: str
    key: str
    log: Path | None = None  # the node's log: its last lines in a failed wait's message

    def log_tail(self, lines: int = 40) -> str:
        if self.log is None:
            return ""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def place(self, destination: str, assistant_id: str) -> str:
        """Place a call as a well-behaved client does under the shipped configuration's calls
        per second: a ``429`` is retried after its ``Retry-After`` (a few times at most)."""
        body = {"destination": destination, "assistant_id": assistant_id}
        headers = {"Authorization": f"Bearer {self.key}"}
        for _ in range(5):
            async with self.http.post(
                f"{self.base}/calls/outbound", json=body, headers=headers
            ) as resp:
                if resp.status == 429:
                    await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                    continue
                assert resp.status == 200, await resp.text()
                placed = await resp.json()
            assert placed["success"] is True, placed
            return str(placed["call_id"])
        raise AssertionError("the call was refused 429 five times")

    async def call(self, call_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await get_json(self.http, f"{self.base}/calls/{call_id}", self.key)
        return found

    async def wait(
        self, call_id: str, done: Callable[[dict[str, Any]], bool], within: float
    ) -> dict[str, Any]:
        """The call once ``done`` holds; fails if it ends first or ``within`` passes."""
        deadline = time.monotonic() + within
        while True:
            call = await self.call(call_id)
            if done(call):
                return call
            ended = (call["status"], call.get("end_reason"), self.log_tail())
            assert call["status"] not in TERMINAL, ended
            assert time.monotonic() < deadline, (call["status"], call["events"], self.log_tail())
            await asyncio.sleep(0.3)

    async def end(self, call_id: str) -> dict[str, Any]:
        url = f"{self.base}/calls/{call_id}/control"
        await post_json(self.http, url, self.key, {"type": "end-call"})
        deadline = time.monotonic() + 20
        call = await self.call(call_id)
        while call["status"] not in TERMINAL and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
            call = await self.call(call_id)
        assert call["status"] == "ended", call.get("end_reason")
        return call


@pytest.mark.timeout(300)
async def test_the_compose_service_as_shipped_places_calls_that_talk(
    deployment: Deployment, lab: LabAsterisk, tmp_path: Path
) -> None:
    require_offline_speech()
    doctor = deployment.run("voicedock", "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    said, ok = doctor.stdout.strip().splitlines()
    assert said.startswith("asterisk: Asterisk 22.")
    assert "media over chan_websocket" in said
    assert ok == "OK"
    migrate = deployment.run("voicedock", "migrate")
    assert migrate.returncode == 0, migrate.stderr
    created = deployment.run(
        "voicedock", "keys", "create", "--organization", deployment.organization
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]

    log = tmp_path / "serve.log"
    before = set(lab.recordings_dir.glob("silent-*-rx.wav"))
    with serving(deployment, log) as process:
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            api = Api(http, deployment.api, key)
            await wait_healthy(http, deployment.api, process, log)
            await wait_pbx_connected(http, lab, deployment, process, log)
            # The assistant id comes from the configured [[assistants]] (GET /assistants).
            assistants = (await get_json(http, f"{deployment.api}/assistants", key))["assistants"]
            assistant_id = assistants[0]["id"]

            # 1. A party that listens: it hears the whole configured first message.
            call_id = await api.place(SILENT_PARTY, assistant_id)
            greeted = await api.wait(call_id, lambda c: bool(transcript(c, "assistant")), 40)
            assert greeted["status"] == "in-progress"
            greeting = transcript(greeted, "assistant")[0]
            assert greeting["content"] == deployment.first_message, greeting
            await api.end(call_id)

            # 2. A party that talks: its words reach the call's transcript.
            call_id = await api.place(UTTERANCE_PARTY, assistant_id)
            said = await api.wait(call_id, lambda c: heard_party(c) >= PARTY_WORDS, 40)
            assert said["status"] == "in-progress"
            await api.end(call_id)
        assert process.poll() is None, log.read_text()[-3000:]  # still serving

    recording = await new_recording(lab.recordings_dir, "silent-*-rx.wav", before)
    pcm, rate = read_recording(recording)
    assert speech_seconds(pcm, rate) > 1.0
    heard = words(await transcribe(pcm, rate))
    assert {"hello", "help"} <= heard, f"the party heard {sorted(heard)}"

    # The service's log holds no key, full phone number, secret or transcript text.
    text = log.read_text()
    for secret in (key, UTTERANCE_PARTY, SILENT_PARTY, "appointment", *secrets(lab).values()):
        assert secret not in text, f"the service log carries {secret[:4]}…"


def heard_party(call: Mapping[str, Any]) -> set[str]:
    return words(" ".join(m["content"] for m in transcript(call, "user")))
