"""Which calls must disclose the AI (``[ai_disclosure]``, docs/compliance.md): every call
where the operator requires it, the calls of the organizations it names, and those of an
organization that requires it itself (``PATCH /organization``). An organization only ever
adds the requirement: the operator's stands whatever the organization says."""

from __future__ import annotations

from voicedock.config.disclosure import AiDisclosureSettings
from voicedock.domain.ai_disclosure import DisclosureRule, RequiredBy
from voicedock.domain.records import Organization


def disclosure_rule(
    settings: AiDisclosureSettings, organization: Organization | None
) -> DisclosureRule | None:
    """The disclosure a call of ``organization`` must give; None: none required."""
    if settings.required_for(organization.name if organization is not None else None):
        required_by: RequiredBy = "operator"
    elif organization is not None and organization.ai_disclosure_required:
        required_by = "organization"
    else:
        return None
    return DisclosureRule(required_by, settings.text, tuple(settings.phrases))
