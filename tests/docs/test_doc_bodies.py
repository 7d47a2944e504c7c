"""Every API body the documentation shows conforms to the OpenAPI document's schema.

Two kinds of examples:

* the request examples of README.md, docs/*.md and the API seeds (``curl ... -d '{...}'``,
  control commands; read by ``user_paths/examples.py``): the body against the operation's
  request schema, a documented response (``# → {...}``, the seed's JSON after the command)
  against the response schema of its status — a response may elide fields (``…``), so what it
  shows must conform, not that it shows every required one;
* fenced ``json`` blocks of README.md and docs/*.md, which must say what they are after the
  language: ```` ```json POST /assistants ```` (a request body of that operation),
  ```` ```json 503 GET /health ```` (a response body of that status), or ```` ```json webhook ````
  (a body voicedock sends to the organization's server, not the API's). An unmarked block
  fails, so no new example escapes the check.

``<placeholder>`` values (``<assistant id>``) stand for an id of the documented form.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from user_paths.examples import Example, all_examples, markdown_sources
from voicedock.api.models.document import openapi_document

pytestmark = pytest.mark.unit

DOCUMENT = openapi_document()
_FENCE = re.compile(r"^```json[ \t]*([^\n]*)\n(.*?)^```", re.M | re.S)
_MARK = re.compile(r"(?:(?P<status>\d{3}) )?(?P<method>GET|POST|PATCH|PUT|DELETE) (?P<path>/\S*)")
_PLACEHOLDER = re.compile(r"^<[a-z][a-z ]*>$")
PLACEHOLDER_VALUE = "placeholder-1"


@dataclass(frozen=True)
class Body:
    source: str
    method: str
    path: str
    status: int | None  # None: the request body
    body: Any
    partial: bool = False  # a response summary that elides fields


def _operation(method: str, documented: str) -> tuple[str, dict[str, Any]]:
    """The document's path template and operation for a documented path (ids, placeholders
    and a query string in place of its parameters)."""
    segments = documented.split("?", 1)[0].rstrip("/").split("/")
    for template, methods in DOCUMENT["paths"].items():
        parts = template.split("/")
        same = len(parts) == len(segments) and all(
            p == s or p.startswith("{") for p, s in zip(parts, segments, strict=True)
        )
        if same and method.lower() in methods:
            return template, methods[method.lower()]
    raise AssertionError(f"{method} {documented} is no documented operation")


def _schema(body: Body) -> dict[str, Any]:
    template, op = _operation(body.method, body.path)
    if body.status is None:
        content = op["requestBody"]["content"]["application/json"]
    else:
        response = op["responses"].get(str(body.status))
        assert response is not None, f"{body.source}: {template} documents no {body.status}"
        content = response["content"]["application/json"]
    schema: dict[str, Any] = {**content["schema"], "components": DOCUMENT["components"]}
    return _without_required(schema) if body.partial else schema


def _without_required(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_required(v) for k, v in schema.items() if k != "required"}
    if isinstance(schema, list):
        return [_without_required(v) for v in schema]
    return schema


def _filled(value: Any) -> Any:
    """``<assistant id>`` → an id of the documented form."""
    if isinstance(value, str) and _PLACEHOLDER.match(value):
        return PLACEHOLDER_VALUE
    if isinstance(value, dict):
        return {k: _filled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v) for v in value]
    return value


def _success(method: str, path: str) -> int:
    _, op = _operation(method, path)
    return min(int(code) for code in op["responses"] if code.startswith("2"))


def _from_examples(examples: list[Example]) -> list[Body]:
    bodies: list[Body] = []
    for example in examples:
        path = example.path.replace("<call id>", PLACEHOLDER_VALUE)
        if example.body is not None:
            bodies.append(Body(example.id, example.method, path, None, _filled(example.body)))
        if isinstance(example.response, dict):
            status = example.status or _success(example.method, path)
            response = _filled(example.response)
            bodies.append(Body(example.id, example.method, path, status, response, partial=True))
    return bodies


def _from_fences(paths: list[Path]) -> tuple[list[Body], list[str]]:
    bodies: list[Body] = []
    unmarked: list[str] = []
    for path in paths:
        text = path.read_text()
        for fence in _FENCE.finditer(text):
            source = f"{path.name}:{text.count(chr(10), 0, fence.start()) + 1}"
            mark = fence.group(1).strip()
            if mark == "webhook":
                continue
            match = _MARK.fullmatch(mark)
            if match is None:
                unmarked.append(f"{source}: ```json {mark}")
                continue
            status = int(match["status"]) if match["status"] else None
            body = _filled(json.loads(fence.group(2)))
            bodies.append(Body(source, match["method"], match["path"], status, body))
    return bodies, unmarked


FENCED, UNMARKED = _from_fences(markdown_sources())
BODIES = _from_examples(all_examples()) + FENCED


def test_every_json_block_says_what_it_is() -> None:
    assert not UNMARKED, (
        "mark each: ```json <METHOD> <path>, <status> <METHOD> <path> or webhook\n"
        + ("\n".join(UNMARKED))
    )


def test_the_documents_still_have_bodies() -> None:
    """A parser that silently finds nothing would make this module pass vacuously."""
    assert len([b for b in BODIES if b.status is None]) >= 10
    assert len([b for b in BODIES if b.status is not None]) >= 3
    assert len(FENCED) >= 5


@pytest.mark.parametrize(
    "body", BODIES, ids=[f"{b.source}:{b.status or 'request'}" for b in BODIES]
)
def test_a_documented_body_conforms_to_the_schema(body: Body) -> None:
    schema = _schema(body)
    errors = sorted(
        jsonschema.Draft202012Validator(copy.deepcopy(schema)).iter_errors(body.body),
        key=lambda e: list(e.absolute_path),
    )
    assert not errors, f"{body.source} ({body.method} {body.path}): " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message[:200]}" for e in errors
    )
