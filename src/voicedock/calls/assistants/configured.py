"""The operator's ``[[assistants]]``, checked at start-up (and by ``voicedock doctor``) as the
API checks an assistant it saves.

An assistant of the file is mirrored into the store (``organizations/config_mirror.py``) and its
calls resolve it into providers like any other (``resolve_provider``: the provider rules, the node's
engines and voices, the egress policy's URLs). One it could not resolve would fail only when
a call uses it: instead the node refuses to start, with a ``ConfigError`` naming the
assistant and its key (``assistants[1].llm_config.base_url``), like any other setting it
cannot run. Blocking: it may read the node's voice files (``pipeline/speaking/node_voices.py``).

The operator's default fallback plans (``[speech.fallback_plans]``), which every pipeline
call whose assistant gives an engine no plan of its own takes, are checked first, the same way
(``speech.fallback_plans.llm[1].model``).
"""

from __future__ import annotations

import re

from voicedock.calls.assistants.config import check_config, operator_plan, resolve_provider
from voicedock.config import AssistantSettings, Settings
from voicedock.domain.tenant_provider_fields import FALLBACK_PLAN
from voicedock.egress import EgressPolicy
from voicedock.errors import ApiError, ConfigError
from voicedock.organizations.config_mirror import assistant_config

# A message that starts with the key it is about: ``llm_config.base_url: ...``,
# ``tts_config.voice 'x' is not ...``.
_KEY_FIRST = re.compile(r"([a-z_]+(?:\.[a-z_]+|\[\d+\])+):? (.+)|([a-z_]+): (.+)", re.S)


def configured_assistant_problems(settings: Settings, policy: EgressPolicy) -> list[ConfigError]:
    """One ``ConfigError`` per default fallback plan entry the node could not build, then
    per ``[[assistants]]`` entry whose calls could not be placed."""
    problems = operator_plan_problems(settings)
    for i, a in enumerate(settings.assistants):
        try:
            config = check_config(assistant_config(a), "assistant", allow_profile=False)
            resolve_provider(config, settings.speech, policy)
        except ApiError as exc:
            problems.append(_problem(i, a, exc.message))
    return problems


def operator_plan_problems(settings: Settings) -> list[ConfigError]:
    """One ``ConfigError`` per engine of ``[speech.fallback_plans]`` whose plan could not be
    built, naming its entry and key."""
    problems = []
    for key in ("llm_config", "stt_config", "tts_config"):
        try:
            operator_plan(key, settings.speech)
        except ApiError as exc:
            where, problem = _key_first(exc.message)
            engine = key.removesuffix("_config")
            where = where.replace(f"{key}.{FALLBACK_PLAN}", f"speech.fallback_plans.{engine}", 1)
            problems.append(ConfigError(where or f"speech.fallback_plans.{engine}", problem))
    return problems


def check_configured_assistants(settings: Settings, policy: EgressPolicy) -> None:
    """The first of ``configured_assistant_problems``, raised."""
    problems = configured_assistant_problems(settings, policy)
    if problems:
        raise problems[0]


def _problem(index: int, a: AssistantSettings, message: str) -> ConfigError:
    where, problem = _key_first(message)
    key = f"assistants[{index}].{where}" if where else f"assistants[{index}]"
    return ConfigError(key, f"{problem} (assistant {a.name!r} of organization {a.organization!r})")


def _key_first(message: str) -> tuple[str, str]:
    """The key a message is about ("" when it names none) and what it says of it."""
    found = _KEY_FIRST.fullmatch(message)
    if found is None:
        return "", message
    return found.group(1) or found.group(3), found.group(2) or found.group(4)
