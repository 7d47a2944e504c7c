"""docs/errors.md, generated: every error title (the ``error`` field) the code can answer, by
status, and every status each route documents (the OpenAPI document's responses).

The titles come from the source itself (``ast``): the default of each ``ApiError`` class
(src/voicedock/errors.py and its subclasses elsewhere), every ``error="..."`` given where one
is raised, each resource's 404 title (api/resources.py: ``title=`` or made from ``noun=``), and
the titles the error middleware sets (api/error_responses.py). test_errors_doc.py fails when the
file differs from what this renders. Regenerate:

    PYTHONPATH=src:tests python tests/docs/errors_doc.py
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from voicedock.api.models.document import openapi_document
from voicedock.api.resources import not_found_title

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "src" / "voicedock"
DOC = REPO / "docs" / "errors.md"
_METHODS = ("get", "post", "patch", "put", "delete")


@dataclass(frozen=True, order=True)
class Title:
    status: int
    error: str
    where: str  # the module that answers it, relative to src/voicedock


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SOURCE.rglob("*.py")):
        yield str(path.relative_to(SOURCE)), ast.parse(path.read_text())


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"``."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def _error_classes(modules: list[tuple[str, ast.Module]]) -> dict[str, tuple[int, str, str]]:
    """ApiError and its subclasses anywhere: name -> (status, default title, module)."""
    raw: dict[str, tuple[list[str], dict[str, object], str]] = {}
    for name, tree in modules:
        constants = _constants(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                # Given where it is declared (class NotFound(ApiError, status=404, error=...)),
                # or set in its body (ApiError's own).
                given: list[tuple[str | None, ast.expr | None]] = [
                    (keyword.arg, keyword.value) for keyword in node.keywords
                ]
                for item in node.body:
                    target = item.target if isinstance(item, ast.AnnAssign) else None
                    if isinstance(item, ast.Assign) and len(item.targets) == 1:
                        target = item.targets[0]
                    if isinstance(target, ast.Name):
                        given.append((target.id, getattr(item, "value", None)))
                attrs: dict[str, object] = {}
                for attr, value in given:
                    if attr is None:
                        continue
                    if isinstance(value, ast.Constant):
                        attrs[attr] = value.value
                    elif isinstance(value, ast.Name) and value.id in constants:
                        attrs[attr] = constants[value.id]  # error=REFUSED_ERROR
                bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
                raw[node.name] = (bases, attrs, name)
    classes: dict[str, tuple[int, str, str]] = {}

    def resolve(cls: str) -> tuple[int, str, str] | None:
        if cls in classes:
            return classes[cls]
        if cls not in raw:
            return None
        bases, attrs, module = raw[cls]
        parent = None
        if cls != "ApiError":
            parent = next((r for b in bases if (r := resolve(b)) is not None), None)
            if parent is None:
                return None
        status = attrs.get("status", parent[0] if parent else None)
        error = attrs.get("error", parent[1] if parent else None)
        if not isinstance(status, int) or not isinstance(error, str):
            return None
        classes[cls] = (status, error, module)
        return classes[cls]

    for cls in raw:
        resolve(cls)
    return classes


def _texts(node: ast.expr, constants: dict[str, str]) -> list[str]:
    """The title(s) an ``error=`` argument can be."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _texts(node.body, constants) + _texts(node.orelse, constants)
    if isinstance(node, ast.Name) and node.id in constants:
        return [constants[node.id]]
    if isinstance(node, ast.JoinedStr):  # f"{what.capitalize()} not found"
        parts = [v.value if isinstance(v, ast.Constant) else "<Resource>" for v in node.values]
        return ["".join(str(p) for p in parts)]
    return []


def titles() -> list[Title]:
    modules = list(_modules())
    classes = _error_classes(modules)
    found: set[Title] = {Title(s, e, m) for s, e, m in classes.values()}
    for module, tree in modules:
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in classes:
                for keyword in node.keywords:
                    if keyword.arg == "error":
                        for text in _texts(keyword.value, constants):
                            found.add(Title(classes[name][0], text, module))
            elif name in ("Resource", "templates", "oldest_first"):
                # api/resources.py: a resource's 404 title
                given = {k.arg: k.value for k in node.keywords}
                if "title" in given:
                    texts = _texts(given["title"], constants)
                else:
                    texts = [not_found_title(n) for n in _texts(given["noun"], constants)]
                found.update(Title(404, text, module) for text in texts)
            elif name == "error_response" and len(node.args) >= 2:
                # api/error_responses.py's answer (an int status); not the OpenAPI document's
                # error_response (api/models/operations.py: a "403" status and a description).
                status, error = node.args[0], node.args[1]
                if (
                    isinstance(status, ast.Constant)
                    and isinstance(status.value, int)
                    and isinstance(error, ast.Constant)
                ):
                    found.add(Title(int(status.value), str(error.value), module))
            if module == "api/error_responses.py":
                continue
        if module == "api/error_responses.py":  # aiohttp's own errors, translated
            for node in tree.body:
                if (
                    isinstance(node, ast.AnnAssign | ast.Assign)
                    and isinstance(node.value, ast.Dict)
                    and "_HTTP_ERRORS" in ast.unparse(node)
                ):
                    for key, value in zip(node.value.keys, node.value.values, strict=True):
                        if isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
                            found.add(Title(int(key.value), str(value.value), module))
    return sorted(found)


def route_statuses() -> dict[str, list[tuple[int, str]]]:
    """ "METHOD /path" -> [(status, description)] of the error responses it documents."""
    out: dict[str, list[tuple[int, str]]] = {}
    for path, methods in openapi_document()["paths"].items():
        for method in _METHODS:
            op = methods.get(method)
            if op is None:
                continue
            errors = [
                (int(code), response.get("description", ""))
                for code, response in op["responses"].items()
                if int(code) >= 400
            ]
            out[f"{method.upper()} {path}"] = sorted(errors)
    return out


def render() -> str:
    by_status: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for title in titles():
        by_status[title.status][title.error].add(title.where)
    lines = [
        "# Error codes",
        "",
        "<!-- Generated by tests/docs/errors_doc.py from the code's error classes and the OpenAPI",
        "     document; tests/docs/test_errors_doc.py fails when it is out of date. -->",
        "",
        "Every answer that is not a success is one JSON object:",
        '`{"error": "<title>", "message": "<what was wrong, naming the field>"}`. The `error`',
        "title is stable (match on it and the status); the `message` is for people. `429` and",
        "`503` carry `Retry-After` (seconds).",
        "",
        "- `400`: the request's own content is invalid, or the node's policy refuses it; the",
        "  message names the field. Mostly it breaks the documented schema (`/openapi.json`): a",
        "  type, a bound, a pattern, a required or unknown field, a provider's rule (`if`/`then`),",
        "  JSON that is not strict (`Bad request`, `Invalid JSON`). Titles of their own: the",
        "  seeds' `Invalid destination format` (an E.164 number that is no number in use) and",
        "  `Inactive assistant`; `Unresolvable configuration` (a configuration breaking a",
        "  provider's rule, also once merged with what it completes, or naming what this node",
        "  does not have: engines, voices, hosts), `URL refused` and `Webhook URL refused` (the",
        "  egress policy); what the schema cannot check is among them.",
        "- `404`: no such resource in the caller's organization (another organization's is a",
        "  `404` too), also an unknown `assistant_id` or `number_id` of `POST /calls/outbound`.",
        "- `422`: the request is valid but names an object of the organization that does not",
        "  exist or does not fit (`Unknown tool template`, `Unknown analysis template`, an",
        "  `api_key_ref` naming no key, `Unknown assistant` for a number or a webhook), or reuses",
        "  an `Idempotency-Key` with another body (`Idempotency key reused`), or keeps a stored",
        "  provider key (sent back masked, or left out) for another provider or URL.",
        "",
        "## Titles by status",
        "",
        "| Status | `error` | Answered by (src/voicedock/) |",
        "|---|---|---|",
    ]
    for status in sorted(by_status):
        for error in sorted(by_status[status]):
            where = ", ".join(f"`{m}`" for m in sorted(by_status[status][error]))
            lines.append(f"| {status} | `{error}` | {where} |")
    lines += [
        "",
        "`<Resource> not found` names the resource (`Assistant not found`, `Phone number not",
        "found`, ...). A method a path does not have is `405` `Method not allowed`, with",
        "`Allow` naming those it has. Any route may also answer `500` `Internal error` (a bug:",
        "the log has the traceback, the body never does).",
        "",
        "## Statuses by route",
        "",
        "What each operation of `/openapi.json` documents (every error body is the shape above).",
        "",
        "| Route | Error statuses |",
        "|---|---|",
    ]
    for route, errors in route_statuses().items():
        statuses = ", ".join(str(status) for status, _ in errors) or "none"
        lines.append(f"| `{route}` | {statuses} |")
    lines += ["", "What each status means on every route:", ""]
    meanings: dict[int, set[str]] = defaultdict(set)
    for errors in route_statuses().values():
        for status, description in errors:
            meanings[status].add(description)
    for status in sorted(meanings):
        lines.append(f"- `{status}`: " + "; ".join(sorted(meanings[status])) + ".")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOC.write_text(render())
