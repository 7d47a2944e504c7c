"""``voicedock doctor``: check the configuration (and optionally an Asterisk config directory),
then the live PBX unless ``--offline``: each Asterisk server over its ARI (its version, how its
calls' audio travels, its trunks: ``voicedock.pbx.asterisk.server_check``), or the FreeSWITCH
over its ESL (``voicedock.pbx.freeswitch.doctor``).

Prints ``OK`` or each problem on its own line; the exit status is 0 when everything is fine,
1 when there are problems, 2 when the configuration itself cannot be loaded or names an
assistant whose calls could not be placed (``calls/assistants/configured.py``: ``voicedock
serve`` refuses to start on it with the same message). A node that places
calls is also checked for what a stolen API key could cost (``policy_warnings``,
``cap_warnings``; docs/transfers.md, docs/campaigns.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TextIO

from voicedock.calls.assistants.configured import configured_assistant_problems
from voicedock.config import (
    DEFAULT_REFUSED_NUMBER_TYPES,
    EVERY_COUNTRY,
    Settings,
    load_settings,
)
from voicedock.config.workers import check_workers
from voicedock.egress.settings import egress_policy, egress_warnings
from voicedock.errors import ConfigError
from voicedock.workers.count import worker_count


def check_asterisk_config(directory: Path, settings: Settings) -> list[str]:
    """Problems in an Asterisk configuration directory (``voicedock.pbx.asterisk.doctor``)."""
    if not directory.is_dir():
        return [f"--asterisk-config: {directory} is not a directory"]
    from voicedock.pbx.asterisk.doctor import check  # the PBX's checks load only when asked

    return check(directory, settings)


def policy_warnings(settings: Settings) -> list[str]:
    """A destination policy that lets a key call anywhere, or premium numbers."""
    if settings.pbx.kind == "none":
        return []  # this node places no calls
    policy, out = settings.policy, []
    if EVERY_COUNTRY in policy.allowed_countries:
        out.append(
            'warning: policy.allowed_countries has "*": every country may be called (toll '
            "fraud); list the countries you serve instead"
        )
    for kind in DEFAULT_REFUSED_NUMBER_TYPES:
        if kind not in policy.refused_number_types:
            out.append(
                f"warning: policy.refused_number_types leaves out {kind!r}: {kind} numbers may "
                "be called (toll fraud)"
            )
    return out


def cap_warnings(settings: Settings) -> list[str]:
    """No limit on how many calls a key or an organization can place."""
    if settings.pbx.kind == "none":
        return []
    out = []
    organizations = sorted(
        {n.organization for n in settings.numbers} | {a.organization for a in settings.assistants}
    )
    for organization in organizations:
        if not settings.limits.organization_max_calls(organization):
            out.append(
                f"warning: organization {organization!r} has no concurrent-call limit "
                "([[limits.organizations]] max_concurrent_calls)"
            )
    if not organizations and not settings.limits.organizations:
        out.append("warning: no [[limits.organizations]]: no organization has a call limit")
    for i, trunk in enumerate(settings.trunks):
        for key in ("max_cps", "max_channels"):
            if not getattr(trunk, key):
                out.append(f"warning: trunks[{i}] ({trunk.name}): no {key} (0: no limit)")
    rates = settings.rate_limits
    if not rates.calls_per_second and not rates.organization_calls_per_second:
        out.append(
            "warning: rate_limits: no calls_per_second nor organization_calls_per_second: "
            "a key may place calls as fast as the API answers"
        )
    return out


def run_doctor(
    config: str | None, asterisk_config: Path | None, out: TextIO, *, live: bool = True
) -> int:
    """``live``: the running PBX is checked too (Asterisk over ARI, FreeSWITCH over ESL)."""
    try:
        settings = load_settings(config)
        check_workers(settings, worker_count(settings))  # `voicedock serve`'s, as it starts
    except ConfigError as exc:
        print(str(exc), file=out)
        return 2
    unrunnable = configured_assistant_problems(settings, egress_policy(settings))
    for error in unrunnable:
        print(str(error), file=out)
    problems = check_asterisk_config(asterisk_config, settings) if asterisk_config else []
    problems += policy_warnings(settings) + cap_warnings(settings)
    if live and settings.pbx.kind == "freeswitch":
        from voicedock.pbx.freeswitch.doctor import check

        problems += asyncio.run(check(settings))
    if live and settings.pbx.kind == "asterisk":
        from voicedock.pbx.asterisk.server_check import check_asterisk_servers

        for report in asyncio.run(check_asterisk_servers(settings)):
            for line in report.lines:
                print(line, file=out)
            problems += report.problems
    for problem in problems:
        print(problem, file=out)
    for warning in egress_warnings(settings):  # printed; not a failure (a local model is fine)
        print(warning, file=out)
    if unrunnable:
        return 2
    if problems:
        return 1
    print("OK", file=out)
    return 0
