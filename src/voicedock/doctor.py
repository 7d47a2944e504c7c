"""``voicedock doctor``: check the configuration (and optionally an Asterisk config directory);
with ``pbx.kind = "freeswitch"``, the live FreeSWITCH too (``voicedock.pbx.freeswitch.doctor``).

Prints ``OK`` or each problem on its own line; the exit status is 0 when everything is fine,
1 when there are problems, 2 when the configuration itself cannot be loaded.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from voicedock.config import Settings, load_settings
from voicedock.egress.settings import egress_warnings
from voicedock.errors import ConfigError

AsteriskCheck = Callable[[Path, Settings], list[str]]


def check_asterisk_config(directory: Path, settings: Settings) -> list[str]:
    """Problems in an Asterisk configuration directory.

    A detailed checker may live in ``voicedock.pbx.asterisk.doctor`` (function
    ``check(directory, settings) -> list[str]``); without it only the basics are checked here.
    """
    if not directory.is_dir():
        return [f"--asterisk-config: {directory} is not a directory"]
    try:
        module = importlib.import_module("voicedock.pbx.asterisk.doctor")
    except ModuleNotFoundError:
        module = None
    if module is not None:
        detailed: AsteriskCheck = module.check
        return detailed(directory, settings)
    missing = [n for n in ("ari.conf", "http.conf", "pjsip.conf") if not (directory / n).exists()]
    return [f"--asterisk-config: {name} not found in {directory}" for name in missing]


def run_doctor(config: str | None, asterisk_config: Path | None, out: TextIO) -> int:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        print(str(exc), file=out)
        return 2
    problems = check_asterisk_config(asterisk_config, settings) if asterisk_config else []
    if settings.pbx.kind == "freeswitch":
        from voicedock.pbx.freeswitch.doctor import check

        problems += asyncio.run(check(settings))
    for problem in problems:
        print(problem, file=out)
    for warning in egress_warnings(settings):  # printed; not a failure (a local model is fine)
        print(warning, file=out)
    if problems:
        return 1
    print("OK", file=out)
    return 0
