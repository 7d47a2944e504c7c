"""docker/: the compose file is well-formed for Compose v2 and docker-compose 1.29, keeps the
API and Asterisk control private, agrees with the current config keys, CLI and Asterisk
templates (tests/deploy/ runs it live), and its demo profile reaches the lab's demo party.
A whole run of the stack with Docker is recorded in bench/results/docker-smoke-run-2026-11-27.md."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.shipped import (
    ASTERISK_ENTRYPOINT,
    CONFIG_IN_CONTAINER,
    INSTALL_SPEECH,
    Dockerfile,
    Instruction,
    InterpolationError,
    bind_mounts,
    service_environment,
)
from deploy.shipped import compose as interpolated_compose
from voicedock.config import load_settings
from voicedock_lab.config import (
    FAMILY_EXCLUDED,
    FAMILY_PREFIXES,
    OPTIONAL_MODULES,
    REQUIRED_MODULES,
    find_project_root,
    placeholders,
)

pytestmark = pytest.mark.unit

PROJECT = find_project_root(Path(__file__))
COMPOSE = PROJECT / "docker" / "compose.yaml"
SECRETS = {"ARI_PASSWORD": "a", "AMI_SECRET": "b", "POSTGRES_PASSWORD": "c"}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


DEMO = {"demo-sounds", "demo-carrier"}
OBSERVABILITY = {"prometheus", "grafana"}  # tests/observability/ checks their files


def test_services_and_their_sources() -> None:
    services = interpolated_compose(SECRETS)["services"]
    assert set(services) == {"asterisk", "voicedock", "postgres"} | DEMO | OBSERVABILITY
    assert services["postgres"]["image"] == "postgres:16"
    for name in ("asterisk", "voicedock"):
        assert services[name]["build"]["context"] == ".."
        assert (PROJECT / services[name]["build"]["dockerfile"]).is_file(), name
    mounts = services["asterisk"]["volumes"]
    assert "../sip_configs/asterisk:/templates/sip_configs:ro" in mounts
    assert "../dialplan/asterisk:/templates/dialplan:ro" in mounts
    assert "./demo:/templates/demo:ro" in mounts
    # The demo's services come with `--profile demo` only, from the stack's own two images;
    # Prometheus and Grafana with `--profile observability` only, from the upstream images.
    assert {name for name, s in services.items() if "profiles" in s} == DEMO | OBSERVABILITY
    assert all(services[name]["profiles"] == ["demo"] for name in DEMO)
    assert all(services[name]["profiles"] == ["observability"] for name in OBSERVABILITY)
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    assert services["demo-sounds"]["build"] == services["voicedock"]["build"]
    assert services["demo-carrier"]["build"] == services["asterisk"]["build"]


def test_compose_file_keeps_to_what_docker_compose_1_29_reads() -> None:
    """docker-compose 1.29 (Debian 12, Ubuntu 22.04) refuses a top-level key other than these
    ('name' does not match any of the regexes: '^x-'); the project's name is in docker/.env,
    which both Compose versions read from the compose file's directory."""
    top = set(compose())
    allowed = {"version", "services", "networks", "volumes", "secrets", "configs"}
    assert {key for key in top if not key.startswith("x-")} <= allowed
    env = dict(
        line.split("=", 1)
        for line in (COMPOSE.parent / ".env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env == {"COMPOSE_PROJECT_NAME": "voicedock"}  # never a secret: the file is shipped
    # Profiles and depends_on conditions exist since 1.28 / 1.29; a dependency on a service of
    # another profile is an error in Compose v2.
    services = compose()["services"]
    for name, service in services.items():
        for needed in service.get("depends_on") or {}:
            assert services[needed].get("profiles") in (None, service.get("profiles")), name


def test_api_is_published_on_loopback_and_ari_ami_not_at_all() -> None:
    services = compose()["services"]
    assert services["voicedock"]["ports"] == ["127.0.0.1:8080:8080"]
    published = " ".join(services["asterisk"]["ports"])
    assert "8088" not in published
    assert "5038" not in published
    assert "ports" not in services["postgres"]
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    assert services["grafana"]["ports"] == ["127.0.0.1:3000:3000"]


def test_images_build_on_the_public_bases_unless_told_otherwise() -> None:
    """The Dockerfiles' bases are build arguments whose defaults are the public images, and the
    compose file passes the same defaults (PYTHON_IMAGE / DEBIAN_IMAGE unset)."""
    services = interpolated_compose(SECRETS)["services"]
    for service, argument, public in (
        ("voicedock", "PYTHON_IMAGE", "python:3.11-slim"),
        ("asterisk", "DEBIAN_IMAGE", "debian:testing-slim"),
    ):
        build = services[service]["build"]
        image = Dockerfile(PROJECT / build["dockerfile"])
        assert image.instructions[0] == Instruction("ARG", f"{argument}={public}"), service
        assert image.instructions[1] == Instruction("FROM", f"${{{argument}}}"), service
        assert build["args"] == {argument: public}, service
    local = interpolated_compose({**SECRETS, "PYTHON_IMAGE": "local/python:3.11"})["services"]
    assert local["voicedock"]["build"]["args"] == {"PYTHON_IMAGE": "local/python:3.11"}
    postgres = interpolated_compose({**SECRETS, "POSTGRES_IMAGE": "local/pg"})["services"]
    assert postgres["postgres"]["image"] == "local/pg"


def test_service_image_runs_voicedock_serve_unprivileged() -> None:
    text = (PROJECT / "docker" / "Dockerfile").read_text()
    assert text.startswith("# voicedock service image")
    assert "RUN pip install ." in text
    assert 'CMD ["voicedock", "serve"]' in text
    assert "USER voicedock" in text


def test_asterisk_entrypoint_substitutes_only_listed_placeholders() -> None:
    script = (PROJECT / "docker" / "asterisk" / "entrypoint.sh").read_text()
    assert 'envsubst "$VARS"' in script
    assert "${EXTEN}" not in script.split("VARS=", 1)[1].split("'", 2)[1]


def compose_environment() -> dict[str, str]:
    """The secrets only, and what finds the Compose v2 plugin (HOME, DOCKER_CONFIG)."""
    passed = {k: v for k, v in os.environ.items() if k in ("HOME", "DOCKER_CONFIG")}
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **passed, **SECRETS}


def compose_command(version: str) -> list[str]:
    """``docker compose`` (v2) or ``docker-compose`` (1.29), skipping the test without it."""
    command = ["docker", "compose"] if version == "v2" else ["docker-compose"]
    probe = None
    if shutil.which(command[0]):
        probe = subprocess.run(
            [*command, "version"],
            capture_output=True,
            text=True,
            check=False,
            env=compose_environment(),
            timeout=60,
        )
    if probe is None or probe.returncode != 0:
        detail = (probe.stderr or probe.stdout).strip()[:200] if probe else "not on PATH"
        reason = f"{' '.join(command)} unavailable: {detail}"
        print(f"skipped: {reason}")
        pytest.skip(reason)
    return command


@pytest.mark.parametrize("version", ["v2", "1.29"])
def test_docker_compose_config_accepts_the_file(version: str) -> None:
    """Compose itself reads the file, with and without its profiles, from any directory."""
    command = compose_command(version)
    for profile in ([], ["--profile", "demo"], ["--profile", "observability"]):
        result = subprocess.run(
            [*command, "-f", str(COMPOSE), *profile, "config"],
            capture_output=True,
            text=True,
            check=False,
            env=compose_environment(),
            cwd="/",
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        config = yaml.safe_load(result.stdout)
        assert set(config["services"]) >= {"asterisk", "voicedock", "postgres"}, profile
        if version == "v2":  # 1.29 does not print the project's name
            assert config["name"] == "voicedock"


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
    # The compose file mounts sip_configs/asterisk at /templates/sip_configs, dialplan/asterisk
    # at /templates/dialplan and docker/demo at /templates/demo.
    mounts = bind_mounts(interpolated_compose(SECRETS)["services"]["asterisk"])
    sources = {Path(target).name: source for target, source in mounts.items()}
    assert sources["sip_configs"] == PROJECT / "sip_configs/asterisk"
    assert sources["dialplan"] == PROJECT / "dialplan/asterisk"
    assert sources["demo"] == PROJECT / "docker/demo"
    rendered = {PROJECT / "sip_configs/asterisk" / name for name in loop.group(1).split()}
    for folder, name in re.findall(r"render /templates/(\w+)/(\S+)", script):
        rendered.add(sources[folder] / name)
    templates = {*(PROJECT / "sip_configs/asterisk").glob("*.conf")}
    templates.add(PROJECT / "dialplan/asterisk/extensions_voicedock.conf")
    templates.add(PROJECT / "docker/demo/pjsip_trunk_demo.conf")
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


# ---- the Asterisk image's modules ----------------------------------------------------------

MODULES_LIST = PROJECT / "docker" / "asterisk" / "modules.list"
MODULES_CONF_SH = PROJECT / "docker" / "asterisk" / "modules-conf.sh"


def listed_modules() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in MODULES_LIST.read_text().splitlines())
    return [line for line in lines if line]


def test_image_loads_what_the_lab_asterisk_loads() -> None:
    """The test suite runs every call feature on the lab Asterisk: the image loads its modules
    (and app_queue, for the dialplan's queue targets), not Debian's load-everything."""
    listed = listed_modules()
    assert len(listed) == len(set(listed)), "a module listed twice"
    assert set(REQUIRED_MODULES) | set(OPTIONAL_MODULES) <= set(listed), sorted(
        set(REQUIRED_MODULES) | set(OPTIONAL_MODULES) - set(listed)
    )
    extra = set(listed) - set(REQUIRED_MODULES) - set(OPTIONAL_MODULES)
    assert extra == {"app_queue"}
    assert "_queue-X." in (PROJECT / "dialplan/asterisk/extensions_voicedock.conf").read_text()
    script = MODULES_CONF_SH.read_text()
    assert FAMILY_PREFIXES == ("res_ari_", "res_stasis_")  # the script's two globs
    assert '"$moddir"/res_ari_*.so "$moddir"/res_stasis_*.so' in script
    assert set(FAMILY_EXCLUDED) == {"res_stasis_test"}
    assert "res_stasis_test.so) continue" in script
    dockerfile = Dockerfile(PROJECT / "docker" / "asterisk" / "Dockerfile")
    assert any(
        "modules-conf.sh" in run and "/etc/asterisk/modules.conf" in run
        for run in dockerfile.of("RUN")
    )


def run_modules_conf(tmp_path: Path, shipped: list[str]) -> subprocess.CompletedProcess[str]:
    moddir = tmp_path / "modules"
    moddir.mkdir()
    for name in shipped:
        (moddir / f"{name}.so").touch()
    conf = tmp_path / "asterisk.conf"
    conf.write_text(f"[directories](!)\nastetcdir => /etc/asterisk\nastmoddir => {moddir}\n")
    return subprocess.run(
        ["sh", str(MODULES_CONF_SH), str(MODULES_LIST)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "ASTERISK_CONF": str(conf)},
        timeout=30,
    )


def test_modules_conf_loads_the_list_and_ari_and_nothing_else(tmp_path: Path) -> None:
    family = ["res_ari_channels", "res_ari_model", "res_stasis_snoop", "res_stasis_test"]
    result = run_modules_conf(tmp_path, [*listed_modules(), *family, "pbx_dundi", "res_hep"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1:3] == ["[modules]", "autoload = no"]
    loaded = [line.removeprefix("load = ").removesuffix(".so") for line in lines[3:]]
    expected = [*listed_modules(), "res_ari_channels", "res_stasis_snoop"]
    assert loaded == expected  # res_ari_model once, no test module, nothing unlisted


def test_modules_conf_stops_the_build_naming_a_missing_module(tmp_path: Path) -> None:
    result = run_modules_conf(tmp_path, [m for m in listed_modules() if m != "chan_websocket"])
    assert result.returncode == 1
    assert "lacks required modules: chan_websocket" in result.stderr


# ---- the demo profile ------------------------------------------------------------------------

DEMO_DIR = PROJECT / "docker" / "demo"
DEMO_PARTY = (
    "+31612345676"  # the lab's demo party (dialplan/lab/), the number scripts/run.sh prints
)


def test_demo_trunk_leads_to_the_demo_carrier_service() -> None:
    """Without a carrier of the user's own, the trunk voicedock dials ("carrier") leads to the
    demo-carrier service, which takes every call from the compose network to its party."""
    stack = interpolated_compose(SECRETS)
    defaults = {**entrypoint_defaults(), **service_environment(stack["services"]["asterisk"])}
    assert defaults["TRUNK_HOST"] == defaults["IP_TRUNK_HOST"] == ""
    assert defaults["DEMO_CARRIER_HOST"] in stack["services"]
    trunk = (DEMO_DIR / "pjsip_trunk_demo.conf").read_text()
    assert "[${TRUNK_NAME}]" in trunk
    assert "contact = sip:${DEMO_CARRIER_HOST}:5060" in trunk
    settings = load_settings(None, container_environment())
    assert defaults["TRUNK_NAME"] in {t.endpoint for t in settings.trunks}
    carrier = (DEMO_DIR / "carrier" / "pjsip.conf").read_text()
    subnet = stack["networks"]["voicedock"]["ipam"]["config"][0]["subnet"]
    assert f"match = {subnet}" in carrier
    assert "bind = 0.0.0.0:5060" in carrier
    assert "ports" not in stack["services"]["demo-carrier"]


def test_demo_party_is_the_labs_and_plays_the_sound_demo_sounds_makes() -> None:
    lab = (PROJECT / "dialplan" / "lab" / "extensions.conf").read_text()
    carrier = (DEMO_DIR / "carrier" / "extensions.conf").read_text()
    party = [line for line in lab.splitlines() if line.startswith(f"exten => {DEMO_PARTY},")]
    assert party, "the lab's demo party is gone"
    assert f"exten => {DEMO_PARTY},1,Answer()" in carrier
    lab_steps = re.findall(
        r"WaitForNoise\([^)]*\)|WaitForSilence\([^)]*\)",
        lab.split(f"exten => {DEMO_PARTY},", 1)[1].split("exten =>", 1)[0],
    )
    carrier_steps = re.findall(r"WaitForNoise\([^)]*\)|WaitForSilence\([^)]*\)", carrier)
    assert carrier_steps == lab_steps  # it listens to the greeting as the lab's party does

    services = interpolated_compose(SECRETS)["services"]
    played = re.search(r"Playback\((/[^)]+)/utterance-appointment\)", carrier)
    assert played is not None
    carrier_mounts = dict(v.split(":")[1::-1] for v in services["demo-carrier"]["volumes"])
    sounds_mounts = dict(v.split(":")[1::-1] for v in services["demo-sounds"]["volumes"])
    assert carrier_mounts[played.group(1)] == sounds_mounts["/sounds"] == "demo-sounds"
    assert "APPOINTMENT" in " ".join(services["demo-sounds"]["command"])
    assert services["demo-carrier"]["depends_on"] == {
        "demo-sounds": {"condition": "service_completed_successfully"}
    }


def test_demo_sounds_command_writes_the_partys_sentence(tmp_path: Path) -> None:
    """The demo-sounds service's command, run here with the lab's code and Piper as the image
    runs it: the party's sentence as an 8 kHz mono WAV the carrier's Asterisk plays."""
    from e2e.audio_helpers import require_offline_speech

    require_offline_speech()
    service = interpolated_compose(SECRETS)["services"]["demo-sounds"]
    command = [str(part) for part in service["command"]]
    assert command[:2] == ["python", "-c"]
    code = command[2].replace('"/sounds"', repr(str(tmp_path / "sounds")))
    code = code.replace('"/tmp/utterances"', repr(str(tmp_path / "cache")))
    assert code != command[2]
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(PROJECT / "lab" / "src")},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with wave.open(str(tmp_path / "sounds" / "utterance-appointment.wav"), "rb") as sound:
        assert (sound.getnchannels(), sound.getsampwidth(), sound.getframerate()) == (1, 2, 8000)
        assert 1.5 < sound.getnframes() / 8000 < 6
