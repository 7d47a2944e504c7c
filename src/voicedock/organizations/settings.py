"""An organization's settings (``GET/PATCH /organization``, ``voicedock organizations``): its
display name and the defaults of its new assistants, which it sets itself, and its limits,
which it reads and the operator sets (the configuration's ``[limits]``/``[rate_limits]``, and
per-organization overrides of the concurrent-call limit and of the bound on scheduled calls
kept in the database)."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass

from voicedock.config import Settings
from voicedock.domain.json import JsonObject, JsonValue
from voicedock.domain.records import Organization
from voicedock.errors import VoicedockError
from voicedock.organizations.config_mirror import ensure_organization
from voicedock.organizations.trunk_access import TrunkAccess
from voicedock.store.base import Store

# The settings an organization may give its new assistants by default (a subset of an
# assistant's configuration, checked by the same rules: ``calls/assistants/defaults.py``).
DEFAULT_FIELDS = (
    "provider",
    "first_message",
    "system_prompt",
    "llm_config",
    "stt_config",
    "tts_config",
    "media_format",
    "record",
    "voicemail_detection",
    "silence_timeout_seconds",
    "max_duration_seconds",
    "redaction_plan",
)
DISPLAY_NAME_MAX = 200
MAX_CONCURRENT_CALLS = 100_000  # the operator's override: 0 (no limit) to this
MAX_SCHEDULED_CALLS = 100_000  # the operator's override: 0 (no limit) to this


class OrganizationRefused(VoicedockError):
    """The operator's request cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class OrganizationLimits:
    """What the organization may hold or send at once (0: no limit)."""

    max_concurrent_calls: int
    max_concurrent_calls_source: str  # "operator" (the database) or "configuration"
    max_scheduled_calls: int  # calls waiting with scheduled_at
    max_scheduled_calls_source: str  # "operator" (the database) or "configuration"
    requests_per_second: int
    calls_per_second: int
    key_requests_per_second: int
    key_calls_per_second: int
    open_streams: int
    open_streams_per_key: int
    previews: int
    trunks: list[str]
    phone_numbers: list[str]


def max_concurrent_calls(settings: Settings, org: Organization | None, name: str) -> int:
    """The organization's concurrent-call limit: the operator's override, else the file's."""
    if org is not None and org.max_concurrent_calls is not None:
        return org.max_concurrent_calls
    return settings.limits.organization_max_calls(name)


def max_scheduled_calls(settings: Settings, org: Organization | None) -> int:
    """How many calls the organization may have waiting with ``scheduled_at`` (0: no limit):
    the operator's override, else the file's ``[limits] scheduled_calls_per_organization``."""
    if org is not None and org.max_scheduled_calls is not None:
        return org.max_scheduled_calls
    return settings.limits.scheduled_calls_per_organization


def _source(override: int | None) -> str:
    return "operator" if override is not None else "configuration"


async def limits_of(store: Store, settings: Settings, org: Organization) -> OrganizationLimits:
    rates, limits = settings.rate_limits, settings.limits
    numbers = await store.list_phone_numbers(org.id)
    trunks = [t.name for t in await store.list_trunks()]
    access = TrunkAccess(settings.trunks)
    return OrganizationLimits(
        max_concurrent_calls=max_concurrent_calls(settings, org, org.name),
        max_concurrent_calls_source=_source(org.max_concurrent_calls),
        max_scheduled_calls=max_scheduled_calls(settings, org),
        max_scheduled_calls_source=_source(org.max_scheduled_calls),
        requests_per_second=rates.organization_requests_per_second,
        calls_per_second=rates.organization_calls_per_second,
        key_requests_per_second=rates.requests_per_second,
        key_calls_per_second=rates.calls_per_second,
        open_streams=limits.open_streams_per_organization,
        open_streams_per_key=limits.open_streams_per_key,
        previews=limits.previews_per_organization,
        trunks=sorted(access.visible(trunks, org.id, numbers)),
        phone_numbers=sorted(n.number for n in numbers),
    )


def with_defaults(body: Mapping[str, JsonValue], defaults: Mapping[str, JsonValue]) -> JsonObject:
    """A new assistant's body with the organization's defaults for what it leaves out (or
    sends as null)."""
    return {**body, **{k: v for k, v in defaults.items() if body.get(k) is None}}


class Unchanged(enum.Enum):
    """An operator's override ``set_limits`` leaves as it is."""

    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED
# An operator's override: a value, None (the configuration's again) or UNCHANGED.
Override = int | None | Unchanged


async def set_limits(
    store: Store,
    name: str,
    *,
    max_concurrent_calls: Override = UNCHANGED,
    max_scheduled_calls: Override = UNCHANGED,
) -> Organization:
    """The operator's overrides of ``name``'s limits; the organization is created if needed
    (before its first key, say)."""
    for value, what, most in (
        (max_concurrent_calls, "max concurrent calls", MAX_CONCURRENT_CALLS),
        (max_scheduled_calls, "max scheduled calls", MAX_SCHEDULED_CALLS),
    ):
        if isinstance(value, int) and not 0 <= value <= most:
            raise OrganizationRefused(f"{what} must be 0-{most}")
    if not name.strip() or len(name) > DISPLAY_NAME_MAX or not name.isprintable():
        raise OrganizationRefused(
            f"an organization name is 1-{DISPLAY_NAME_MAX} printable characters"
        )
    updated = await ensure_organization(store, name)
    if not isinstance(max_concurrent_calls, Unchanged):
        updated = dataclasses.replace(updated, max_concurrent_calls=max_concurrent_calls)
    if not isinstance(max_scheduled_calls, Unchanged):
        updated = dataclasses.replace(updated, max_scheduled_calls=max_scheduled_calls)
    async with store.transaction() as tx:
        await tx.update_organization(updated)
    return updated
