"""The deployment as shipped in docker/, read the way Docker reads it (no Docker needed).

* ``compose(env)``: docker/compose.yaml with ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
  ``${VAR:?message}``, ``${VAR?message}``, ``${VAR:+alt}`` and ``$$`` interpolated as
  ``docker compose`` does (YAML anchors and ``<<`` merges resolved by the YAML loader).
* ``service_environment`` / ``bind_mounts``: a service's ``environment`` (mapping or list) and
  its bind mounts (container path → host path, relative sources from the compose file's dir).
* ``Dockerfile``: the instructions (continuations joined, comments dropped), the image's ENV
  and the command a container runs (ENTRYPOINT + CMD, exec or shell form).

Used by tests/lab/test_lab_docker.py (static checks) and tests/deploy/ (the service run as
shipped against the lab Asterisk and a real PostgreSQL).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from voicedock_lab.config import find_project_root

PROJECT = find_project_root(Path(__file__))
DOCKER_DIR = PROJECT / "docker"
COMPOSE = DOCKER_DIR / "compose.yaml"
SERVICE_DOCKERFILE = DOCKER_DIR / "Dockerfile"
ASTERISK_ENTRYPOINT = DOCKER_DIR / "asterisk" / "entrypoint.sh"
CONFIG_IN_CONTAINER = "/etc/voicedock/voicedock.toml"
INSTALL_SPEECH = "scripts/install-offline-speech.sh"

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    """A required variable (``${VAR:?message}``) is missing, as ``docker compose`` reports."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``text`` with compose's variable syntax replaced from ``env``."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("plain")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return interpolate(arg, env) if empty else str(value)
        if op in (":?", "?"):
            if empty:
                raise InterpolationError(f"required variable {name} is missing a value: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if empty else interpolate(arg, env)
        return value or ""

    return _VARIABLE.sub(replace, text)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def compose(env: Mapping[str, str], path: Path = COMPOSE) -> dict[str, Any]:
    """The compose file as ``docker compose config`` would see it with ``env`` set."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    result: dict[str, Any] = _interpolate_tree(data, env)
    return result


def service_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment:``, as strings (mapping or ``KEY=value`` list form)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = [str(item).split("=", 1) for item in raw]
        return {p[0]: p[1] if len(p) > 1 else "" for p in pairs}
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def bind_mounts(service: Mapping[str, Any], compose_dir: Path = DOCKER_DIR) -> dict[str, Path]:
    """Container path → host path of a service's bind mounts (named volumes are left out)."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            source, target = str(volume.get("source", "")), str(volume["target"])
            if volume.get("type") != "bind":
                continue
        else:
            source, target = str(volume).split(":")[:2]
        if source.startswith((".", "/", "~")):
            mounts[target] = (compose_dir / Path(source).expanduser()).resolve()
    return mounts


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: RUN, ENV, CMD, ...
    arguments: str


class Dockerfile:
    """The instructions of a Dockerfile, enough to know what the image installs and runs."""

    def __init__(self, path: Path = SERVICE_DOCKERFILE) -> None:
        self.path = path
        self.instructions = _instructions(path.read_text(encoding="utf-8"))

    def of(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """The image's environment (every ENV, in order; later ones win)."""
        env: dict[str, str] = {}
        for arguments in self.of("ENV"):
            words = shlex.split(arguments)
            if words and "=" not in words[0]:  # legacy form: ENV KEY value with spaces
                env[words[0]] = arguments.split(None, 1)[1] if len(words) > 1 else ""
                continue
            for word in words:
                key, _, value = word.partition("=")
                env[key] = interpolate(value, env)
        return env

    def command(self, compose_service: Mapping[str, Any] | None = None) -> list[str]:
        """What a container of this image runs: ENTRYPOINT + CMD (compose may override them)."""
        service = compose_service or {}
        entrypoint = self._exec_form(service.get("entrypoint"), "ENTRYPOINT")
        cmd = self._exec_form(service.get("command"), "CMD")
        return entrypoint + cmd

    def _exec_form(self, override: Any, keyword: str) -> list[str]:
        if override is not None:
            return (
                [str(w) for w in override] if isinstance(override, list) else ["sh", "-c", override]
            )
        found = self.of(keyword)
        if not found:
            return []
        last = found[-1].strip()
        if last.startswith("["):
            words: list[str] = json.loads(last)
            return words
        return ["/bin/sh", "-c", last]

    def user(self) -> str:
        users = self.of("USER")
        return users[-1].strip() if users else "root"


def _instructions(text: str) -> list[Instruction]:
    found: list[Instruction] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, arguments = current.strip().partition(" ")
        found.append(Instruction(keyword.upper(), " ".join(arguments.split())))
        current = ""
    return found
