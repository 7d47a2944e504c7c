"""docker/: the compose file is well-formed, keeps the API and Asterisk control private, and
agrees with the current config keys, CLI and Asterisk templates (tests/deploy/ runs it live)."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.shipped import (
    ASTERISK_ENTRYPOINT,
    CONFIG_IN_CONTAINER,
    INSTALL_SPEECH,
    Dockerfile,
    InterpolationError,
    bind_mounts,
    service_environment,
)
from deploy.shipped import compose as interpolated_compose
from voicedock.config import load_settings
from voicedock_lab.config import find_project_root, placeholders

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


# ---- agreement with the current config keys, CLI and templates -----------------------------


def container_environment() -> dict[str, str]:
    """The voicedock container's environment: the image's ENV, then the service's, with the
    mounted config file's container path mapped to its source in the repository."""
    service = interpolated_compose(SECRETS)["services"]["voicedock"]
    env = {**Dockerfile().env(), **service_environment(service)}
    mounts = {k: str(v) for k, v in bind_mounts(service).items()}
    return {key: mounts.get(value, value) for key, value in env.items()}


def test_compose_environment_and_mounted_config_are_accepted_by_the_config() -> None:
    """Every VOICEDOCK_* key the compose file sets exists (public_media_url did not)."""
    env = container_environment()
    assert env["VOICEDOCK_CONFIG"] == str(PROJECT / "voicedock.example.toml")
    settings = load_settings(None, env)
    assert settings.database.url.startswith("postgresql://voicedock:c@postgres:5432/")
    assert settings.pbx.asterisk.ari_password == SECRETS["ARI_PASSWORD"]
    assert settings.pbx.asterisk.ami_secret == SECRETS["AMI_SECRET"]


def test_compose_refuses_to_start_without_its_secrets() -> None:
    with pytest.raises(InterpolationError, match="ARI_PASSWORD"):
        interpolated_compose({"AMI_SECRET": "b", "POSTGRES_PASSWORD": "c"})


def test_config_is_mounted_where_the_service_reads_it() -> None:
    service = interpolated_compose(SECRETS)["services"]["voicedock"]
    assert service_environment(service)["VOICEDOCK_CONFIG"] == CONFIG_IN_CONTAINER
    assert bind_mounts(service)[CONFIG_IN_CONTAINER].is_file()


def test_service_image_installs_the_offline_speech_engines_with_the_script() -> None:
    """The default assistant speaks offline: the image runs scripts/install-offline-speech.sh
    (the same script as scripts/bootstrap.sh) after installing voicedock, as root, and the
    Whisper model lands in the home of the user the service runs as."""
    image = Dockerfile()
    assert any(INSTALL_SPEECH in copy for copy in image.of("COPY")), image.of("COPY")
    keywords = [i.keyword for i in image.instructions]
    runs = [(n, i.arguments) for n, i in enumerate(image.instructions) if i.keyword == "RUN"]
    install = [(n, run) for n, run in runs if f"bash {INSTALL_SPEECH}" in run]
    assert install, "docker/Dockerfile never runs " + INSTALL_SPEECH
    position, command = install[0]
    assert keywords.index("USER") > position, "the script must run as root (pip, apt-get)"
    assert "pip install ." in command.split(f"bash {INSTALL_SPEECH}")[0]
    assert "PIP=pip" in command
    assert "PY=python" in command
    useradd = next(run for _, run in runs if run.startswith("useradd"))
    home = re.search(r"--home-dir (\S+)", useradd)
    assert home is not None
    assert f"HOME={home.group(1)} " in command
    assert image.user() == "voicedock"
    assert f"bash {INSTALL_SPEECH}" in (PROJECT / "scripts" / "bootstrap.sh").read_text()


def test_service_image_command_is_a_voicedock_cli_command() -> None:
    from voicedock.cli import build_parser

    service = interpolated_compose(SECRETS)["services"]["voicedock"]
    command = Dockerfile().command(service)
    assert command[0] == "voicedock"
    build_parser().parse_args(command[1:])  # exits (SystemExit) on an unknown command


def entrypoint_defaults() -> dict[str, str]:
    script = ASTERISK_ENTRYPOINT.read_text()
    return dict(re.findall(r'^: "\$\{([A-Z_]+):=(.*)\}"$', script, re.MULTILINE))


def entrypoint_names() -> set[str]:
    script = ASTERISK_ENTRYPOINT.read_text()
    listed = script.split("VARS=", 1)[1].split("'", 2)[1]
    return set(re.findall(r"\$\{([A-Z_]+)\}", listed))


def test_asterisk_entrypoint_fills_every_placeholder_of_the_templates_it_renders() -> None:
    script = ASTERISK_ENTRYPOINT.read_text()
    loop = re.search(r"for name in ([^;]+); do\s+render \"/templates/sip_configs/", script)
    assert loop is not None
    # The compose file mounts sip_configs/asterisk at /templates/sip_configs, and
    # dialplan/asterisk at /templates/dialplan.
    sources = {"sip_configs": "sip_configs/asterisk", "dialplan": "dialplan/asterisk"}
    rendered = {PROJECT / "sip_configs/asterisk" / name for name in loop.group(1).split()}
    for folder, name in re.findall(r"render /templates/(\w+)/(\S+)", script):
        rendered.add(PROJECT / sources[folder] / name)
    templates = {*(PROJECT / "sip_configs/asterisk").glob("*.conf")}
    templates.add(PROJECT / "dialplan/asterisk/extensions_voicedock.conf")
    assert rendered == templates, "a template the image never renders, or one that is gone"

    names = entrypoint_names()
    assert names <= set(entrypoint_defaults()) | {"ARI_PASSWORD", "AMI_SECRET"}  # no default
    for template in sorted(templates):
        lines = template.read_text().splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith(";"))
        # ${EXTEN}, ${DIALSTATUS}, a Gosub's ${ARG1}.. and voicedock's channel variables are
        # Asterisk's own.
        asterisks = {"EXTEN", "DIALSTATUS", "STASISSTATUS", "ARG1", "ARG2", "ARG3", "GOSUB_RETVAL"}
        wanted = {
            n for n in placeholders(text) if n not in asterisks and not n.startswith("VOICEDOCK_")
        }
        assert wanted <= names, f"{template.name}: {sorted(wanted - names)} never substituted"


def test_compose_asterisk_settings_agree_with_the_voicedock_service() -> None:
    stack = interpolated_compose(SECRETS)
    asterisk = service_environment(stack["services"]["asterisk"])
    voicedock = stack["services"]["voicedock"]
    assert set(asterisk) <= entrypoint_names(), sorted(set(asterisk) - entrypoint_names())
    defaults = {**entrypoint_defaults(), **asterisk}
    settings = load_settings(None, container_environment())
    pbx = settings.pbx.asterisk
    assert pbx.ari_url == f"http://asterisk:{defaults['HTTP_PORT']}/ari"
    assert (pbx.ami_host, str(pbx.ami_port)) == ("asterisk", defaults["AMI_PORT"])
    assert (pbx.ari_user, pbx.ami_user, pbx.app) == (
        defaults["ARI_USER"],
        defaults["AMI_USER"],
        defaults["APP_NAME"],
    )
    assert defaults["TRUNK_NAME"] in {t.endpoint for t in settings.trunks}
    # Client-mode media: Asterisk dials the voicedock service's own port.
    container_port = voicedock["ports"][0].rsplit(":", 1)[1]
    assert defaults["MEDIA_WS_HOST"] == "voicedock"
    assert defaults["MEDIA_WS_PORT"] == container_port == str(settings.server.port)
    # AMI accepts the compose network only.
    subnet = ipaddress.ip_network(stack["networks"]["voicedock"]["ipam"]["config"][0]["subnet"])
    address, mask = defaults["AMI_PERMIT"].split("/")
    assert ipaddress.ip_network(f"{address}/{mask}") == subnet
