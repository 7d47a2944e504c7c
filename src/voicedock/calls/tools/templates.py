"""Tool templates in assistant configurations: ``{"template_id": ...}`` items of ``tools``
become the organization's stored tool when a call is placed (so the call's snapshot holds
the tool itself, and a template changed later does not change calls already placed). Saving
an assistant, and placing a call with a transient one, checks that each template it names
exists (``422 Unknown tool template`` otherwise); a template an assistant still references is
not deleted (``calls/assistants/referencing.py``)."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from voicedock.calls import json_readers
from voicedock.calls.tools.config import TEMPLATE_ID, check_unique_names
from voicedock.domain.json import JsonObject, JsonValue
from voicedock.errors import Unprocessable
from voicedock.store.base import Store


async def expand_tool_templates(store: Store, organization_id: str, config: JsonObject) -> None:
    """Replace each template reference in ``config["tools"]`` by the template's tool (422 when
    the organization has no such template; 400 when two tools end up with one name)."""
    tools = config.get("tools")
    if not isinstance(tools, list) or not any(
        isinstance(t, dict) and TEMPLATE_ID in t for t in tools
    ):
        return
    expanded: list[JsonObject] = []
    for i, item in enumerate(tools):
        if isinstance(item, dict) and TEMPLATE_ID in item:
            template = await store.get_tool_template(organization_id, str(item[TEMPLATE_ID]))
            if template is None:
                raise _unknown(i)
            expanded.append(copy.deepcopy(template.tool))
        else:  # an object, as check_tools let it through
            expanded.append(json_readers.require_object(item, f"tools[{i}]"))
    check_unique_names(expanded)
    config["tools"] = list[JsonValue](expanded)


async def check_tool_template_refs(
    store: Store, organization_id: str, config: Mapping[str, JsonValue]
) -> None:
    """422 when ``config["tools"]`` names a tool template the organization does not have."""
    tools = config.get("tools")
    if not isinstance(tools, list):
        return
    for i, item in enumerate(tools):
        if (
            isinstance(item, dict)
            and TEMPLATE_ID in item
            and await store.get_tool_template(organization_id, str(item[TEMPLATE_ID])) is None
        ):
            raise _unknown(i)


def _unknown(index: int) -> Unprocessable:
    return Unprocessable(
        f"tools[{index}].{TEMPLATE_ID}: no tool template with this id",
        error="Unknown tool template",
    )


def uses_tool_template(config: Mapping[str, JsonValue], template_id: str) -> bool:
    """Whether ``config["tools"]`` references the tool template ``template_id``."""
    tools = config.get("tools")
    return isinstance(tools, list) and any(
        isinstance(t, dict) and t.get(TEMPLATE_ID) == template_id for t in tools
    )
