"""Analysis templates in assistant configurations: an ``analysis_plan`` of
``{"template_id": ...}`` names a plan the organization stored once (``/analysis-templates``).

Saving an assistant checks that the template exists (``check_template_ref``: 422 otherwise, as
for a transient assistant's when a call is placed); placing a call replaces the reference by
the template's plan (``expand_analysis_template``), so the call's snapshot holds the plan itself
and a template changed later does not change calls already placed; a template an assistant
still references is not deleted (``calls/assistants/referencing.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from voicedock.calls.tools.config import TEMPLATE_ID
from voicedock.domain.json import JsonObject
from voicedock.errors import Unprocessable
from voicedock.store.base import Store

ANALYSIS_PLAN = "analysis_plan"


def template_ref(config: Mapping[str, object]) -> str | None:
    """The analysis template a configuration's plan names (None: none, or a plan of its own)."""
    plan = config.get(ANALYSIS_PLAN)
    if isinstance(plan, Mapping) and isinstance(plan.get(TEMPLATE_ID), str):
        return str(plan[TEMPLATE_ID])
    return None


async def check_template_ref(store: Store, organization_id: str, config: JsonObject) -> None:
    """422 when the configuration names an analysis template the organization does not have."""
    template_id = template_ref(config)
    if template_id is not None and (
        await store.get_analysis_template(organization_id, template_id) is None
    ):
        raise _unknown()


async def expand_analysis_template(store: Store, organization_id: str, config: JsonObject) -> None:
    """Replace a template reference in ``config["analysis_plan"]`` by the template's plan (422
    when the organization has no such template: a transient assistant's, or one deleted since
    its assistant was saved)."""
    template_id = template_ref(config)
    if template_id is None:
        return
    template = await store.get_analysis_template(organization_id, template_id)
    if template is None:
        raise _unknown()
    config[ANALYSIS_PLAN] = copy.deepcopy(template.plan)


def _unknown() -> Unprocessable:
    return Unprocessable(
        f"{ANALYSIS_PLAN}.{TEMPLATE_ID}: no analysis template with this id",
        error="Unknown analysis template",
    )
