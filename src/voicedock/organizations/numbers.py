"""Phone numbers as the operator manages them (``voicedock numbers``): add one to an
organization, list an organization's, assign one to another organization, remove one.

Numbers are the operator's: no API key creates, moves or removes one (``POST`` and ``DELETE
/phone-numbers`` answer 403). Numbers of the configuration's ``[[numbers]]`` are managed there
(the next start-up would undo a change made here), so these refuse to touch them.
"""

from __future__ import annotations

import re
import uuid

from voicedock.config import Settings, TrunkSettings
from voicedock.domain.assistant_config import LANGUAGE_TAG_PATTERN
from voicedock.domain.records import Organization, PhoneNumber, utcnow
from voicedock.errors import VoicedockError
from voicedock.organizations.config_mirror import ensure_organization
from voicedock.store.base import Store
from voicedock.validation import is_e164

MAX_CONCURRENT_CALLS = 10_000  # as [[numbers]] max_concurrent_calls
LANGUAGE_TAG = re.compile(LANGUAGE_TAG_PATTERN)  # as PATCH /phone-numbers/{id} takes it


class NumberRefused(VoicedockError):
    """The operator's request cannot be done; the message says why."""


async def add_number(
    store: Store,
    settings: Settings,
    number: str,
    trunk: str,
    organization: str,
    max_concurrent_calls: int = 1,
    label: str = "",
    language: str | None = None,
) -> tuple[PhoneNumber, Organization]:
    """Register ``number`` on ``trunk`` for ``organization`` (created if needed); ``label`` and
    ``language`` (the one its inbound calls open in) as first set: the organization may change
    them (``PATCH /phone-numbers/{id}``)."""
    if not is_e164(number):
        raise NumberRefused(f"{number!r} is not an E.164 number (+ and 7-15 digits)")
    if not 1 <= max_concurrent_calls <= MAX_CONCURRENT_CALLS:
        raise NumberRefused(f"max concurrent calls must be 1-{MAX_CONCURRENT_CALLS}")
    if len(label) > 200 or not label.isprintable():
        raise NumberRefused("the label is at most 200 printable characters")
    if language is not None and LANGUAGE_TAG.fullmatch(language) is None:
        raise NumberRefused(
            f"{language!r} is not a language: its primary tag (BCP 47), 2-3 lowercase letters "
            "such as de"
        )
    _check_trunk(settings, trunk, organization)
    existing = await store.find_phone_number_by_e164(number)
    if existing is not None:
        holder = await store.get_organization(existing.organization_id)
        name = holder.name if holder is not None else existing.organization_id
        raise NumberRefused(f"{number} is already registered to organization {name!r}")
    org = await ensure_organization(store, organization)
    created = _entering(org, number, trunk, max_concurrent_calls, label, language)
    async with store.transaction() as tx:
        await tx.insert_phone_number(created)
    return created, org


async def list_numbers(store: Store, organization: str) -> list[PhoneNumber]:
    """The organization's numbers (``NumberRefused`` when there is no such organization)."""
    org = await store.get_organization_by_name(organization)
    if org is None:
        raise NumberRefused(f"no organization named {organization!r}")
    return await store.list_phone_numbers(org.id)


async def assign_number(
    store: Store, settings: Settings, number: str, organization: str
) -> tuple[PhoneNumber, Organization]:
    """Move ``number`` to ``organization``: it gets a new id, no assistant and no label (the
    previous organization's), and keeps its trunk and limit. Refused while it has calls."""
    saved = await _managed_here(store, settings, number)
    _check_trunk(settings, saved.trunk, organization)
    org = await ensure_organization(store, organization)
    if org.id == saved.organization_id:
        return saved, org
    await _no_calls(store, saved)
    moved = _entering(org, saved.number, saved.trunk, saved.max_concurrent_calls)
    async with store.transaction() as tx:
        await tx.delete_phone_number(saved.organization_id, saved.id)
        await tx.insert_phone_number(moved)
    return moved, org


async def remove_number(store: Store, settings: Settings, number: str) -> PhoneNumber:
    """Delete ``number`` (its past calls keep their records). Refused while it has calls."""
    saved = await _managed_here(store, settings, number)
    await _no_calls(store, saved)
    async with store.transaction() as tx:
        await tx.delete_phone_number(saved.organization_id, saved.id)
    return saved


def _entering(
    org: Organization,
    number: str,
    trunk: str,
    max_concurrent_calls: int,
    label: str = "",
    language: str | None = None,
) -> PhoneNumber:
    """``number``'s record as it enters ``org`` (added, or moved there): a new id, no
    assistant, created now."""
    now = utcnow()
    return PhoneNumber(
        id=str(uuid.uuid4()),
        organization_id=org.id,
        number=number,
        trunk=trunk,
        max_concurrent_calls=max_concurrent_calls,
        label=label,
        language=language,
        created_at=now,
        updated_at=now,
    )


def _check_trunk(settings: Settings, trunk: str, organization: str) -> TrunkSettings:
    configured = {t.name: t for t in settings.trunks}
    found = configured.get(trunk)
    if found is None:
        names = ", ".join(sorted(configured)) or "none"
        raise NumberRefused(f"no trunk {trunk!r} in the configuration (trunks: {names})")
    if not organization.strip():
        raise NumberRefused("the organization name must not be empty")
    if not found.serves(organization):
        raise NumberRefused(
            f"trunk {trunk!r} does not serve organization {organization!r}"
            " (add it to that trunk's organizations in the configuration)"
        )
    return found


async def _managed_here(store: Store, settings: Settings, number: str) -> PhoneNumber:
    if any(n.number == number for n in settings.numbers):
        raise NumberRefused(f"{number} is in the configuration's [[numbers]]: change it there")
    saved = await store.find_phone_number_by_e164(number) if is_e164(number) else None
    if saved is None:
        raise NumberRefused(f"no phone number {number!r} is registered")
    return saved


async def _no_calls(store: Store, number: PhoneNumber) -> None:
    active = await store.count_active_calls(number.id)
    if active:
        raise NumberRefused(f"{number.number} has {active} call(s) in progress; retry later")
