"""``/openapi.json``: the models' JSON Schemas and the routes' metadata, with the links between
operations (what one answers feeds the next: the ``call_id`` of ``POST /calls/outbound`` is the
id of ``GET /calls/{id}`` and of its control)."""

from __future__ import annotations

import copy
import functools
import json
import re
from types import ModuleType
from typing import TypeVar

import msgspec

from voicedock import __version__
from voicedock.api.models import (
    agents,
    analysis_templates,
    api_keys,
    assistant_versions,
    assistants,
    audit_events,
    billing,
    call_events,
    caller_memory,
    calls,
    campaigns,
    console,
    do_not_call,
    domains,
    health,
    knowledge,
    listen,
    organization,
    phone_numbers,
    provider_keys,
    provider_sections,
    record_versions,
    squads,
    test_suites,
    tools,
    usage,
    voices,
    webhooks,
)
from voicedock.api.models.base import Body, Error, Reply
from voicedock.api.models.operations import Schema, path_parameters, ref

S = TypeVar("S", bound=msgspec.Struct)

# Each resource's module: PATHS (route metadata) and MODELS (what its routes read and answer);
# optionally SCHEMAS (named schemas made from a lower floor's rules, e.g. the time zones) and
# UNIONS (a named schema that is one of several models, e.g. a tool of any type).
GROUPS: tuple[ModuleType, ...] = (
    calls,
    assistants,
    assistant_versions,
    caller_memory,
    agents,
    provider_sections,
    call_events,
    listen,
    campaigns,
    do_not_call,
    phone_numbers,
    tools,
    analysis_templates,
    voices,
    usage,
    webhooks,
    api_keys,
    organization,
    provider_keys,
    console,
    health,
    test_suites,
    squads,
    record_versions,
    domains,
    audit_events,
    billing,
    knowledge,
)

# (source path, its success status, body field, the operations that take it as "id").
_LINKS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("/calls/outbound", "200", "call_id", ("get /calls/{id}", "post /calls/{id}/control")),
    ("/calls/outbound", "201", "call_id", ("get /calls/{id}", "post /calls/{id}/control")),
    (
        "/assistants",
        "201",
        "id",
        (
            "get /assistants/{id}",
            "patch /assistants/{id}",
            "delete /assistants/{id}",
            "get /assistants/{id}/versions",
        ),
    ),
    (
        "/tool-templates",
        "201",
        "id",
        ("get /tool-templates/{id}", "patch /tool-templates/{id}", "delete /tool-templates/{id}"),
    ),
    (
        "/analysis-templates",
        "201",
        "id",
        (
            "get /analysis-templates/{id}",
            "patch /analysis-templates/{id}",
            "delete /analysis-templates/{id}",
        ),
    ),
    ("/webhooks", "201", "id", ("get /webhooks/{id}", "delete /webhooks/{id}")),
    (
        "/test-suites",
        "201",
        "id",
        (
            "get /test-suites/{id}",
            "patch /test-suites/{id}",
            "delete /test-suites/{id}",
            "post /test-suites/{id}/runs",
        ),
    ),
    ("/test-suites/{id}/runs", "202", "id", ("get /test-runs/{id}",)),
    ("/squads", "201", "id", ("get /squads/{id}", "patch /squads/{id}", "delete /squads/{id}")),
    (
        "/domains",
        "201",
        "id",
        ("get /domains/{id}", "delete /domains/{id}", "post /domains/{id}/verify"),
    ),
    (
        "/campaigns",
        "201",
        "id",
        (
            "get /campaigns/{id}",
            "get /campaigns/{id}/contacts",
            "post /campaigns/{id}/contacts",
            "post /campaigns/{id}/pause",
            "post /campaigns/{id}/resume",
            "post /campaigns/{id}/cancel",
        ),
    ),
    (
        "/api-keys",
        "201",
        "id",
        ("get /api-keys/{id}", "patch /api-keys/{id}", "delete /api-keys/{id}"),
    ),
    (
        "/knowledge-bases",
        "201",
        "id",
        (
            "get /knowledge-bases/{id}",
            "patch /knowledge-bases/{id}",
            "delete /knowledge-bases/{id}",
            "get /knowledge-bases/{id}/documents",
            "post /knowledge-bases/{id}/documents",
            "post /knowledge-bases/{id}/search",
        ),
    ),
)


def _pointer(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def _with_links(paths: dict[str, Schema]) -> dict[str, Schema]:
    for source, status, field, targets in _LINKS:
        links: Schema = {}
        for target in targets:
            method, path = target.split(" ")
            name = method.capitalize() + "".join(
                part.strip("{}").capitalize() for part in path.split("/") if part
            )
            links[name] = {
                "operationRef": _pointer(path, method),
                "parameters": {"id": f"$response.body#/{field}"},
            }
        paths[source]["post"]["responses"][status]["links"] = links
    # A saved assistant is what a call (or a campaign) names: its id fills the body's field.
    for name, target in (("PlaceCall", "/calls/outbound"), ("StartCampaign", "/campaigns")):
        paths["/assistants"]["post"]["responses"]["201"]["links"][name] = {
            "operationRef": _pointer(target, "post"),
            "requestBody": {"assistant_id": "$response.body#/id"},
        }
    return paths


def model_schemas(models: tuple[type[msgspec.Struct], ...]) -> dict[str, Schema]:
    """The models' JSON Schemas (2020-12) by name, each with its cross-field ``SCHEMA`` rules."""
    _, components = msgspec.json.schema_components(
        models, ref_template="#/components/schemas/{name}"
    )
    for schema in components.values():
        if "\n" in schema.get("description", ""):  # a model's docstring, as one paragraph
            schema["description"] = " ".join(schema["description"].split())
    for model in _subclasses(Body) | _subclasses(Reply):
        if model.SCHEMA and model.__name__ in components:
            components[model.__name__].update(copy.deepcopy(model.SCHEMA))
    for body in _subclasses(Body):
        if body.__name__ not in components:  # a base of named models (a built-in tool's)
            continue
        for name, default in body.DEFAULTS.items():
            components[body.__name__]["properties"][name]["default"] = default
    return components


def _referred(schemas: dict[str, Schema]) -> set[str]:
    """The names of the schemas ``schemas`` refer to."""
    return set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(schemas)))


def _subclasses(model: type[S]) -> set[type[S]]:
    found: set[type[S]] = set()
    for sub in model.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


@functools.cache
def _document() -> Schema:
    paths: dict[str, Schema] = {}
    schemas: dict[str, Schema] = {}
    models: list[type[msgspec.Struct]] = [Error]
    sources = [(g.PATHS, getattr(g, "SCHEMAS", {})) for g in GROUPS]
    for group_paths, group_schemas in sources:
        for path, item in copy.deepcopy(group_paths).items():
            paths.setdefault(path, {}).update(item)
        schemas.update(copy.deepcopy(group_schemas))
    for group in GROUPS:
        members = [m for union in getattr(group, "UNIONS", {}).values() for m in union]
        models.extend(m for m in (*group.MODELS, *members) if m not in models)
    # A schema a group writes by hand (a provider section's, per provider) documents the
    # model of that name; what only the model's own schema referred to goes with it.
    written = set(schemas)
    generated = model_schemas(tuple(models))
    schemas.update({name: s for name, s in generated.items() if name not in written})
    kept = {m.__name__ for m in models} | written
    while orphans := generated.keys() & schemas.keys() - kept - _referred(schemas):
        for name in orphans:
            del schemas[name]
    for group in GROUPS:
        for name, members in getattr(group, "UNIONS", {}).items():
            schemas[name] = {"oneOf": [ref(member) for member in members]}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "VoiceDock API",
            "version": __version__,
            "description": "AI voice assistants on the phone through your own PBX.",
        },
        "servers": [{"url": "/"}],
        "security": [{"BearerAuth": []}],
        "paths": _with_links(path_parameters(paths)),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API key authentication.",
                }
            },
        },
    }


def openapi_document() -> Schema:
    return copy.deepcopy(_document())


@functools.cache
def openapi_json() -> bytes:
    """The document as served (built once)."""
    return msgspec.json.encode(_document())
