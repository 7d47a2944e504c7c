"""The OpenAPI document as a test sees it: a body checked against one of its schemas, the
statuses and parameters an operation documents."""

from __future__ import annotations

from typing import Any

import jsonschema

from voicedock.api.models.document import openapi_document

DOCUMENT = openapi_document()


def conforms(body: object, schema: str) -> None:
    """Raise (jsonschema.ValidationError) unless ``body`` is valid under the named component."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": DOCUMENT["components"]}
    jsonschema.Draft202012Validator(
        root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(body)


def is_valid(body: object, schema: str) -> bool:
    try:
        conforms(body, schema)
    except jsonschema.ValidationError:
        return False
    return True


def operation(path: str, method: str) -> dict[str, Any]:
    op: dict[str, Any] = DOCUMENT["paths"][path][method]
    return op


def statuses(path: str, method: str) -> set[int]:
    return {int(code) for code in operation(path, method)["responses"]}


def parameter(path: str, method: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        p for p in operation(path, method)["parameters"] if p["name"] == name
    )
    return found
