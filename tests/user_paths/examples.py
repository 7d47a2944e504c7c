"""The request examples of the documentation, read out of the documents at test time.

Sources: ``README.md``, ``docs/*.md`` and the VoiceDock API seeds. The seeds are the project's
shared API contract (``../shared/seeds/*.txt`` beside the repository, or the directory named by
``VOICEDOCK_API_SEEDS``), not part of a clone: what the tests take from them (each example's
method, path, headers, body and documented response) is recorded in ``seed_examples.json``
beside this module, so a clone with nothing beside it tests the same requests.
``test_the_recorded_seed_examples_are_the_seeds`` reads the seeds themselves and keeps the record
equal to them (``python tests/user_paths/examples.py --record-seeds`` rewrites it). Editing an
example changes what the user-path suite sends; a new example that no scenario handles fails
the coverage test.

What counts as a request example:

* a ``curl`` command in a fenced code block of a Markdown file (backslash continuations
  joined, ``-X``, ``-H``, ``-d``, the URL), with the status or body that a following
  ``# → {...}`` / ``# 201 {...}`` comment documents;
* a ``curl`` command in the plain text of a seed (the seeds are flattened web pages: the
  continuations are ``\\`` in the middle of a line), with the JSON object that follows it as
  the documented response;
* a JSON object whose ``type`` is a control command (``say``, ``inject-context``, ...) in a
  fenced ``json`` block or an inline code span of a Markdown file: the body of
  ``POST /calls/<call id>/control``.

Examples that send the same request (the seeds repeat pages) are one example with several
sources.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
# The project's shared folder sits beside the repository (CI clones main with ../shared beside it).
SEEDS_DEFAULT = REPO.parent / "shared" / "seeds"
SEED_RECORD = Path(__file__).with_name("seed_examples.json")
CONTROL_TYPES = ("say", "inject-context", "end-call", "transfer")
CONTROL_PATH = "/calls/<call id>/control"

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
_INLINE = re.compile(r"`(\{[^`]*\})`")
_PLACEHOLDER = re.compile(r"<[a-z][a-z ]*>")
_STATUS_COMMENT = re.compile(r"^\s*(?:→\s*)?(\d{3})\b\s*(.*)$")


@dataclass(frozen=True)
class Example:
    """One documented request: what the user types, with the placeholders still in it."""

    method: str
    path: str  # as documented, API base removed: "/calls/<call id>/control", "/calls?status=..."
    body: Any  # the parsed JSON body (``-d``), or None
    headers: tuple[tuple[str, str], ...] = ()
    sources: tuple[str, ...] = ()  # "README.md:47", "seeds/003_….txt:1"
    status: int | None = None  # the documented status, when the document gives one
    response: Any = None  # the documented response body, when it parses as JSON

    @property
    def key(self) -> str:
        body = json.dumps(self.body, sort_keys=True) if self.body is not None else ""
        return f"{self.method} {self.path} {body}"

    @property
    def id(self) -> str:
        """A short, stable test id: the first source."""
        return self.sources[0]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class _Collector:
    found: dict[str, Example] = field(default_factory=dict)

    def add(self, example: Example) -> None:
        seen = self.found.get(example.key)
        if seen is None:
            self.found[example.key] = example
            return
        merged = Example(
            seen.method,
            seen.path,
            seen.body,
            seen.headers or example.headers,
            seen.sources + example.sources,
            seen.status if seen.status is not None else example.status,
            seen.response if seen.response is not None else example.response,
        )
        self.found[example.key] = merged


def seeds_dir() -> Path:
    return Path(os.environ.get("VOICEDOCK_API_SEEDS", str(SEEDS_DEFAULT)))


def markdown_sources(repo: Path = REPO) -> list[Path]:
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def seed_sources() -> list[Path]:
    """The seed files, in order (none when the seeds are not beside the repository)."""
    return sorted(seeds_dir().glob("*.txt"))


def _label(path: Path, line: int) -> str:
    name = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else f"seeds/{path.name}"
    return f"{name}:{line}"


# ---- curl ------------------------------------------------------------------------------------


def parse_curl(command: str, source: str) -> Example:
    """``curl -s -X POST $API/path -H ... -d '{...}'`` → Example (raises ValueError)."""
    # A placeholder such as <call id> stands for one word, quoted or not.
    protected = _PLACEHOLDER.sub(lambda m: m.group(0).replace(" ", "\0"), command)
    words = [w.replace("\0", " ") for w in shlex.split(protected, posix=True)]
    if not words or words[0] != "curl":
        raise ValueError(f"{source}: not a curl command: {command!r}")
    method, url, data = None, None, None
    headers: list[tuple[str, str]] = []
    i = 1
    while i < len(words):
        word = words[i]
        if word in ("-X", "--request"):
            method, i = words[i + 1], i + 2
        elif word in ("-H", "--header"):
            name, _, value = words[i + 1].partition(":")
            headers.append((name.strip(), value.strip()))
            i += 2
        elif word in ("-d", "--data", "--data-raw"):
            data, i = words[i + 1], i + 2
        elif word in ("-o", "--output"):
            i += 2  # where curl writes the answer (a WAV preview)
        elif word.startswith("-"):
            i += 1  # -s, -N, -i: flags without a value
        else:
            if url is not None:
                raise ValueError(f"{source}: two URLs in {command!r}")
            url, i = word, i + 1
    if url is None:
        raise ValueError(f"{source}: no URL in {command!r}")
    body = json.loads(data) if data is not None else None
    method = method or ("POST" if data is not None else "GET")
    return Example(method.upper(), _path_of(url), body, tuple(headers), (source,))


def _path_of(url: str) -> str:
    """The documented URL without the API base (``$API``, ``https://example.com``)."""
    if url.startswith("$API"):
        return url[len("$API") :] or "/"
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _shell_commands(block: str) -> list[tuple[int, str, str]]:
    """(line offset, command, trailing comment) of each curl in a shell block."""
    lines = block.split("\n")
    out: list[tuple[int, str, str]] = []
    i = 0
    while i < len(lines):
        start = i
        logical = lines[i]
        while logical.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            logical = logical.rstrip()[:-1] + " " + lines[i]
        i += 1
        code, comment = _split_comment(logical)
        if code.strip().startswith("curl "):
            # A documented result may also stand on the next line as a lone comment.
            if not comment and i < len(lines) and lines[i].lstrip().startswith("#"):
                comment = lines[i].lstrip()[1:].strip()
            out.append((start, code.strip(), comment))
    return out


def _split_comment(line: str) -> tuple[str, str]:
    """Split off a ``# comment`` that is outside quotes."""
    quote = None
    for pos, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (pos == 0 or line[pos - 1].isspace()):
            return line[:pos], line[pos + 1 :].strip()
    return line, ""


def _documented_result(comment: str) -> tuple[int | None, Any]:
    """``→ {...}`` / ``201 {...}`` / ``204`` → (status, parsed body or None)."""
    comment = comment.strip()
    status = None
    match = _STATUS_COMMENT.match(comment)
    if match:
        status, comment = int(match.group(1)), match.group(2)
    elif comment.startswith("→"):
        comment = comment[1:].strip()
    if comment.startswith("{"):
        try:
            return status, json.loads(comment)
        except json.JSONDecodeError:
            return status, None
    return status, None


# ---- Markdown --------------------------------------------------------------------------------


def markdown_examples(path: Path) -> list[Example]:
    text = path.read_text()
    out: list[Example] = []
    for fence in _FENCE.finditer(text):
        lang, block = fence.group(1), fence.group(2)
        first_line = text.count("\n", 0, fence.start(2)) + 1
        if lang in ("sh", "bash", "shell", "console", ""):
            for offset, command, comment in _shell_commands(block):
                example = parse_curl(command, _label(path, first_line + offset))
                status, response = _documented_result(comment)
                out.append(_with_result(example, status, response))
        if lang == "json":
            body = _json_object(block)
            if _is_control(body):
                out.append(_control(body, _label(path, first_line)))
    for span in _INLINE.finditer(text):
        body = _json_object(span.group(1))
        if _is_control(body):
            out.append(_control(body, _label(path, text.count("\n", 0, span.start()) + 1)))
    return out


def _json_object(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _is_control(body: Any) -> bool:
    return isinstance(body, dict) and body.get("type") in CONTROL_TYPES


def _control(body: dict[str, Any], source: str) -> Example:
    headers = (("Content-Type", "application/json"),)
    return Example("POST", CONTROL_PATH, body, headers, (source,))


def _with_result(example: Example, status: int | None, response: Any) -> Example:
    return Example(
        example.method,
        example.path,
        example.body,
        example.headers,
        example.sources,
        status,
        response,
    )


# ---- seeds (flattened web pages) -------------------------------------------------------------

_SEED_CURL = re.compile(
    r"curl -X [A-Z]+ \"[^\"]*\"(?:\s*\\?\s*-[Hd] '[^']*'|\s*\\?\s*-H \"[^\"]*\")*"
)


def seed_examples(path: Path) -> list[Example]:
    text = path.read_text()
    out: list[Example] = []
    for match in _SEED_CURL.finditer(text):
        command = match.group(0).replace("\\", " ")
        source = _label(path, text.count("\n", 0, match.start()) + 1)
        example = parse_curl(command, source)
        response, _ = _leading_json(text[match.end() :])
        out.append(_with_result(example, None, response))
    return out


def _leading_json(rest: str) -> tuple[Any, int]:
    stripped = rest.lstrip()
    if not stripped.startswith("{"):
        return None, 0
    try:
        return json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError:
        return None, 0


# ---- the seeds' examples, recorded -----------------------------------------------------------


def seed_examples_from_seeds() -> list[Example]:
    """Every seed's examples, read from the seed text (not deduplicated)."""
    return [example for path in seed_sources() for example in seed_examples(path)]


def recorded_seed_examples() -> list[Example]:
    """The seeds' examples as ``seed_examples.json`` records them."""
    record = json.loads(SEED_RECORD.read_text())
    return [
        Example(
            e["method"],
            e["path"],
            e["body"],
            tuple((name, value) for name, value in e["headers"]),
            (e["source"],),
            e["status"],
            e["response"],
        )
        for e in record["examples"]
    ]


def seed_record(examples: list[Example]) -> str:
    """The text of ``seed_examples.json`` for ``examples`` (one source each)."""
    about = (
        "The request examples of the VoiceDock API seeds (../shared/seeds/*.txt), as "
        "tests/user_paths/examples.py reads them: the tests use this record, so a clone without "
        "../shared tests the same requests. Rewritten by: python tests/user_paths/examples.py "
        "--record-seeds"
    )
    rows = [
        {
            "source": example.sources[0],
            "method": example.method,
            "path": example.path,
            "headers": [list(header) for header in example.headers],
            "body": example.body,
            "status": example.status,
            "response": example.response,
        }
        for example in examples
    ]
    return json.dumps({"about": about, "examples": rows}, indent=2, ensure_ascii=False) + "\n"


# ---- all of them -----------------------------------------------------------------------------


def all_examples(include_seeds: bool = True) -> list[Example]:
    """Every request example, deduplicated, in document order (README, docs, seeds)."""
    collector = _Collector()
    for path in markdown_sources():
        for example in markdown_examples(path):
            collector.add(example)
    if include_seeds:
        for example in recorded_seed_examples():
            collector.add(example)
    return list(collector.found.values())


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--record-seeds"]:
        sys.exit(f"usage: python {sys.argv[0]} --record-seeds  (reads {seeds_dir()})")
    found = seed_examples_from_seeds()
    if not found:
        sys.exit(f"no seed examples in {seeds_dir()} (set VOICEDOCK_API_SEEDS)")
    SEED_RECORD.write_text(seed_record(found))
    print(f"{SEED_RECORD}: {len(found)} examples")
