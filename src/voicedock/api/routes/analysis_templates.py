"""Analysis templates (CRUD per organization): analysis plans stored once, referenced by the
assistants' ``analysis_plan`` as ``{"template_id": ...}`` (calls/assistants/analysis_templates.py).

A template's body is a name and a plan, as an assistant's ``analysis_plan`` (the same bounds);
the answer adds ``id``, ``created_at`` and ``updated_at``. A PATCH replaces the fields it sends
(null removes a plan setting). A template an assistant references is not deleted (409).
"""

from __future__ import annotations

import dataclasses
import uuid

from aiohttp import web

from voicedock.api.audit import Audited
from voicedock.api.models.analysis_templates import AnalysisTemplate as AnalysisTemplateReply
from voicedock.api.models.analysis_templates import AnalysisTemplateCreate, AnalysisTemplateUpdate
from voicedock.api.models.base import parse, sent
from voicedock.api.resources import (
    Caller,
    Resource,
    mount,
    templates,
)
from voicedock.calls import json_readers
from voicedock.calls.assistants.analysis_templates import template_ref
from voicedock.calls.assistants.config import (
    ANALYSIS_PLAN_FIELDS,
    PROFILE_TEXT_MAX,
    check_analysis_plan,
)
from voicedock.domain.json import JsonObject
from voicedock.domain.records import AnalysisTemplate, utcnow
from voicedock.errors import BadRequest

routes = web.RouteTableDef()

NAME = "name"


def _name(obj: JsonObject, *, required: bool) -> str | None:
    if not required and NAME in obj and obj[NAME] is None:
        raise BadRequest("name must not be null")
    return json_readers.text(
        obj, NAME, required=required, max_len=PROFILE_TEXT_MAX, multiline=False
    )


def _checked(body: object, *, required: bool) -> tuple[str | None, JsonObject]:
    """What a body means: its name and its plan settings, checked as an assistant's
    ``analysis_plan`` (the structured data schema's bounds no model states); null: none."""
    obj = json_readers.require_object(body)
    name = _name(obj, required=required)
    return name, check_analysis_plan({k: v for k, v in obj.items() if k != NAME}, "body")


def _new_checked(body: object, _where: str) -> tuple[str | None, JsonObject]:
    return _checked(body, required=True)


def _update_checked(body: object, _where: str) -> tuple[str | None, JsonObject]:
    return _checked(body, required=False)


def _parse_new(caller: Caller, body: object) -> AnalysisTemplate:
    new = parse(body, AnalysisTemplateCreate, words=_new_checked)
    name, plan = _new_checked(sent(new), "body")
    return AnalysisTemplate(
        id=str(uuid.uuid4()), organization_id=caller.organization_id, name=str(name), plan=plan
    )


def _parse_update(_caller: Caller, template: AnalysisTemplate, body: object) -> AnalysisTemplate:
    given = sent(parse(body, AnalysisTemplateUpdate, words=_update_checked))
    name, changed = _update_checked(given, "body")
    plan = {**template.plan, **changed}
    for key in ANALYSIS_PLAN_FIELDS:  # an explicit null removes a setting
        if key in given and given[key] is None:
            plan.pop(key, None)
    return dataclasses.replace(template, name=name or template.name, plan=plan, updated_at=utcnow())


ANALYSIS_TEMPLATES: Resource[AnalysisTemplate] = templates(
    path="/analysis-templates",
    noun="analysis template",
    serialize=AnalysisTemplateReply.of,
    lookup=lambda c, template_id: c.store.get_analysis_template(c.organization_id, template_id),
    every=lambda c: c.store.list_analysis_templates(c.organization_id),
    parse_new=_parse_new,
    parse_update=_parse_update,
    insert=lambda tx, t, _by: tx.insert_analysis_template(t),
    update=lambda tx, t, _by: tx.update_analysis_template(t),
    delete=lambda tx, t: tx.delete_analysis_template(t.organization_id, t.id),
    used_by=lambda t, config: template_ref(config) == t.id,
    in_use="the analysis template is the analysis_plan of",
    remedy="give them another plan first",
    audit=Audited("analysis_template"),
)
RESOURCES = (ANALYSIS_TEMPLATES,)
mount(routes, *RESOURCES)
