"""docker/: the compose file is well-formed and keeps the API and Asterisk control private."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from voicedock.lab.config import find_project_root

pytestmark = pytest.mark.unit

PROJECT = find_project_root(Path(__file__))
COMPOSE = PROJECT / "docker" / "compose.yaml"
SECRETS = {"ARI_PASSWORD": "a", "AMI_SECRET": "b", "POSTGRES_PASSWORD": "c"}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_services_and_their_sources() -> None:
    services = compose()["services"]
    assert set(services) == {"asterisk", "voicedock", "postgres"}
    assert services["postgres"]["image"] == "postgres:16"
    for name in ("asterisk", "voicedock"):
        assert services[name]["build"]["context"] == ".."
        assert (PROJECT / services[name]["build"]["dockerfile"]).is_file(), name
    mounts = services["asterisk"]["volumes"]
    assert "../sip_configs/asterisk:/templates/sip_configs:ro" in mounts
    assert "../dialplan/asterisk:/templates/dialplan:ro" in mounts


def test_api_is_published_on_loopback_and_ari_ami_not_at_all() -> None:
    services = compose()["services"]
    assert services["voicedock"]["ports"] == ["127.0.0.1:8080:8080"]
    published = " ".join(services["asterisk"]["ports"])
    assert "8088" not in published
    assert "5038" not in published
    assert "ports" not in services["postgres"]


def test_service_image_runs_voicedock_serve_unprivileged() -> None:
    text = (PROJECT / "docker" / "Dockerfile").read_text()
    assert text.startswith("# voicedock service image")
    assert "FROM python:3.11-slim" in text
    assert "RUN pip install ." in text
    assert 'CMD ["voicedock", "serve"]' in text
    assert "USER voicedock" in text


def test_asterisk_entrypoint_substitutes_only_listed_placeholders() -> None:
    script = (PROJECT / "docker" / "asterisk" / "entrypoint.sh").read_text()
    assert 'envsubst "$VARS"' in script
    assert "${EXTEN}" not in script.split("VARS=", 1)[1].split("'", 2)[1]


def test_docker_compose_config_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if docker is None:
        print("skipped: no docker client")
        pytest.skip("no docker client on PATH")
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        reason = f"docker compose unavailable: {(probe.stderr or probe.stdout).strip()[:200]}"
        print(f"skipped: {reason}")
        pytest.skip(reason)
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", **SECRETS},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
