"""An assistant's ``analysis_plan``, and ``/analysis-templates`` (a plan stored once, referenced
by the assistants' ``analysis_plan`` as ``{"template_id": ...}``).

A plan's bounds are calls/assistants/config.py's (``check_analysis_plan``: the texts' lengths,
the structured data schema's size, depth and growth, domain/tenant_schemas.py)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.base import Body, Reply, template_reply
from voicedock.api.models.field_types import Time, text
from voicedock.api.models.operations import Schema, owned_paths
from voicedock.calls.assistants.config import ANALYSIS_PLAN_FIELDS, PROFILE_TEXT_MAX
from voicedock.calls.tools.config import TEMPLATE_ID
from voicedock.domain.assistant_config import ANALYSIS_TEXT_MAX, TEMPLATE_ID_MAX
from voicedock.domain.records import AnalysisTemplate as AnalysisTemplateRecord
from voicedock.domain.tenant_schemas import (
    MAX_BRANCHES,
    MAX_DEPTH,
    MAX_SCHEMA_BYTES,
    MAX_SUBSCHEMAS,
)

PlanText = Annotated[str, text(ANALYSIS_TEXT_MAX)] | UnsetType | None
StructuredDataSchema = (
    Annotated[
        dict[str, Any] | None,
        Meta(
            description="JSON Schema of analysis_result.structured_data, applied in the node's "
            f"schema workers under a deadline: at most {MAX_SCHEMA_BYTES} bytes of JSON, "
            f"{MAX_DEPTH} levels of nested schemas, {MAX_SUBSCHEMAS} subschemas counting each "
            f"$ref as what it points to, {MAX_BRANCHES} schemas per anyOf/oneOf/allOf; "
            "pattern, patternProperties, unevaluatedProperties/unevaluatedItems, "
            "$dynamicRef/$recursiveRef, a $ref outside the schema and a schema that refers to "
            "itself are refused (400 naming the place)."
        ),
    ]
    | UnsetType
)
TemplateName = Annotated[str, text(PROFILE_TEXT_MAX, line=True)]


class PlanSettings(Body, kw_only=True):
    """What a plan sets (an assistant's own, or an analysis template's)."""

    summary_prompt: PlanText = UNSET
    structured_data_schema: StructuredDataSchema = UNSET
    success_evaluation_rubric: PlanText = UNSET


class AnalysisPlan(PlanSettings, kw_only=True):
    """What the end-of-call analysis asks for: a plan of its own, or an analysis template of
    the organization named by its id alone (its plan is used when a call is placed)."""

    SCHEMA: ClassVar[Schema] = {
        "anyOf": [{"not": {"required": [TEMPLATE_ID]}}, {"maxProperties": 1}],
    }

    template_id: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=TEMPLATE_ID_MAX,
                description="An analysis template of the organization (POST "
                "/analysis-templates), alone; saving an assistant or placing a call naming "
                "none is a 422 Unknown analysis template.",
            ),
        ]
        | UnsetType
    ) = UNSET


assert set(ANALYSIS_PLAN_FIELDS) == set(PlanSettings.__struct_fields__)
assert TEMPLATE_ID in AnalysisPlan.__struct_fields__


class AnalysisTemplateCreate(PlanSettings, kw_only=True):
    """A template: its name (for people) and the plan."""

    name: TemplateName


class AnalysisTemplateUpdate(PlanSettings, kw_only=True):
    """The fields sent replace the template's; null removes a plan setting. Calls placed
    before keep the plan they were placed with."""

    name: TemplateName | UnsetType = UNSET


class AnalysisTemplate(Reply, kw_only=True):
    id: str
    name: str
    summary_prompt: str | None = None
    structured_data_schema: dict[str, Any] | None = None
    success_evaluation_rubric: str | None = None
    created_at: Time
    updated_at: Time

    @classmethod
    def of(cls, template: AnalysisTemplateRecord) -> AnalysisTemplate:
        stored = {"name": template.name, **template.plan}
        return template_reply(cls, template.id, stored, template.created_at, template.updated_at)


class AnalysisTemplateList(Reply, kw_only=True):
    analysis_templates: list[AnalysisTemplate]


PATHS: dict[str, Schema] = owned_paths(
    "/analysis-templates",
    a_record="an analysis template",
    reply=AnalysisTemplate,
    listing=AnalysisTemplateList,
    create=(
        "Store an analysis template (a plan the assistants reference by id)",
        AnalysisTemplateCreate,
    ),
    update=(
        "Update an analysis template (calls placed before keep their plan)",
        AnalysisTemplateUpdate,
    ),
    held_while="an assistant references it",
)
MODELS = (AnalysisTemplateCreate, AnalysisTemplateUpdate, AnalysisTemplate, AnalysisTemplateList)
