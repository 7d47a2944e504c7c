"""Loading the settings: the TOML file (``--config PATH`` or ``VOICEDOCK_CONFIG``), then the
environment's overrides, keys under their old names, and one decode into ``Settings`` whose
errors name the key as the file writes it (``config: numbers[0].number: …``)."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from voicedock.config.pbx import inherit_server_keys
from voicedock.config.renamed import read_old_names
from voicedock.config.settings import Settings
from voicedock.config.table_types import REFUSED
from voicedock.domain.json import value_at
from voicedock.errors import ConfigError

# VOICEDOCK_<SECTION>__<KEY> (a double underscore between levels) overrides one key, e.g.
# VOICEDOCK_SERVER__PORT=9000 or VOICEDOCK_DATABASE__URL=postgresql://…
ENV_PREFIX = "VOICEDOCK_"


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load, override from the environment, and validate. Raises ``ConfigError``."""
    env = os.environ if environ is None else environ
    source = path if path is not None else env.get(ENV_PREFIX + "CONFIG")
    raw = _read(source) if source else {}
    _override(raw, env)
    written = read_old_names(raw)
    inherit_server_keys(raw)
    _read_texts(raw, Settings)
    try:
        settings = msgspec.convert(raw, Settings)
    except msgspec.ValidationError as exc:
        key, problem = _named(str(exc), raw)
        raise ConfigError(written.get(key, key), problem) from None
    settings.check()
    policy = raw.get("policy")
    settings.fill_in(countries_given=isinstance(policy, dict) and "allowed_countries" in policy)
    return settings


def _read(source: str | os.PathLike[str]) -> dict[str, object]:
    try:
        return tomllib.loads(Path(source).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", f"file not found: {source}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"not valid TOML: {exc}") from None


def _override(raw: dict[str, object], env: Mapping[str, str]) -> None:
    """Each ``VOICEDOCK_*`` variable into ``raw``, as text."""
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if len(parts) < 2 or not all(parts):
            continue
        node = raw
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(".".join(parts), f"{name} overrides a non-table value")
            node = child
        node[parts[-1]] = value


def _read_texts(value: object, tp: object) -> object:
    """``value`` with each text given where ``tp`` takes a number or a switch read as one (an
    environment variable is text; a file may quote them too). The decoding refuses the rest."""
    tp = _unwrap(tp)[0]
    if isinstance(value, str):
        if tp is bool:
            return _SWITCHES.get(value.lower(), value)
        if tp is int or tp is float:
            with contextlib.suppress(ValueError):
                return tp(value)
    elif isinstance(value, dict) and isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        fields = _fields(tp)
        for name, item in value.items():
            if name in fields:
                value[name] = _read_texts(item, fields[name])
    elif isinstance(value, list) and typing.get_origin(tp) is list:
        (item_type,) = typing.get_args(tp)
        value[:] = [_read_texts(item, item_type) for item in value]
    return value


_SWITCHES = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@functools.cache
def _fields(struct: type[msgspec.Struct]) -> dict[str, object]:
    """The type of each field of ``struct``."""
    return {f.name: f.type for f in msgspec.structs.fields(struct)}


# How msgspec says where and what: "Expected `int` >= 0 - at `$.limits.previews_per_node`".
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_FIELD = re.compile(r"Object (?P<what>contains unknown|missing required) field `(?P<name>[^`]*)`")
_WRONG_TYPE = re.compile(r"Expected `[^`]*`, got `[^`]*`$")
_STEP = re.compile(r"\.?(?P<name>[^.\[]+)|\[(?P<index>[^\]]*)\]")


def _named(error: str, raw: dict[str, object]) -> tuple[str, str]:
    """msgspec's ``error`` as the key it is about and what is wrong with its value."""
    at = _AT.search(error)
    path = at["path"] if at is not None else ""
    message = error[: at.start()] if at is not None else error
    field = _FIELD.match(message)
    if field is not None:
        key = f"{path}.{field['name']}" if path else field["name"]
        return key, "unknown key" if field["what"] == "contains unknown" else "is required"
    steps = [m["name"] or m["index"] for m in _STEP.finditer(path)]
    if "..." in steps:  # a value of a table of free keys (facts): msgspec does not say whose
        name = _refused_key(raw, steps[: steps.index("...")])
        steps[steps.index("...")] = name
        path = path.replace("[...]", f".{name}", 1)
    tp, meta = _unwrap(_type_at(steps))
    refused = meta.extra.get(REFUSED) if meta is not None and meta.extra else None
    if typing.get_origin(tp) is Literal:
        problem = refused or f"must be one of {', '.join(map(repr, typing.get_args(tp)))}"
    elif tp is float and meta is not None:
        low = meta.ge if meta.ge is not None else meta.gt
        high = meta.le if meta.le is not None else meta.lt
        problem = f"must be a number between {low:g} and {high:g}"
    elif _WRONG_TYPE.match(message) is None and meta is not None:
        problem = refused or f"must be {meta.ge}-{meta.le}"
    elif tp is int:
        value = value_at(raw, steps)
        problem = "expected an integer" + (f", got {value!r}" if isinstance(value, str) else "")
    else:
        problem = _expected(tp) or message[:1].lower() + message[1:]
    return path or "<root>", str(problem)


def _refused_key(raw: dict[str, object], steps: list[str]) -> str:
    """The first key of the table at ``steps`` whose value its type refuses."""
    table, value_type = value_at(raw, steps), _type_at([*steps, "..."])
    for key, value in table.items() if isinstance(table, dict) else ():
        try:
            msgspec.convert(value, value_type)
        except msgspec.ValidationError:
            return str(key)
    return "..."


def _expected(tp: object) -> str | None:
    if tp is bool:
        return "expected true or false"
    if tp is str:
        return "expected a string"
    origin = typing.get_origin(tp)
    if origin is list:
        return "expected a list"
    if origin is dict or (isinstance(tp, type) and issubclass(tp, msgspec.Struct)):
        return "expected a table"
    return None


def _type_at(steps: list[str]) -> object:
    """The type ``Settings`` gives the value at ``steps`` (None: no such key)."""
    tp: object = Settings
    for step in steps:
        base = _unwrap(tp)[0]
        if isinstance(base, type) and issubclass(base, msgspec.Struct):
            tp = _fields(base).get(step)
        elif typing.get_origin(base) in (list, dict):
            tp = typing.get_args(base)[-1]
        else:
            return None
    return tp


def _unwrap(tp: object) -> tuple[object, Meta | None]:
    """``Annotated[int, Meta(...)]`` as ``int`` and its ``Meta``."""
    if typing.get_origin(tp) is not Annotated:
        return tp, None
    base, *metadata = typing.get_args(tp)
    return base, next((m for m in metadata if isinstance(m, Meta)), None)
