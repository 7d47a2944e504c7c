"""schemathesis checks of our own for tests/api/test_fuzz.py (loaded with SCHEMATHESIS_HOOKS).

A request the document calls valid may still be a 400: what the schema cannot state (a
configuration that does not resolve on this node, a URL the operator's egress policy refuses,
a date range). Such a 400 carries a title of its own (docs/errors.md); the generic titles of a
field that breaks the schema never answer a schema-valid request, or the document and the
models disagree."""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis

# The titles of a request that breaks its documented schema (api/models/base.py, api/body.py).
SCHEMA_BREAKING = frozenset({"Bad request", "Invalid JSON"})
# Where the refused requests are written, one per entry (the fuzzer's report keeps no bodies).
REFUSALS_FILE = os.environ.get("VOICEDOCK_FUZZ_REFUSALS")


@schemathesis.check
def valid_requests_are_refused_by_name(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request answered 400 names the rule the schema cannot state."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    try:
        title = json.loads(response.text).get("error")
    except (ValueError, AttributeError):
        title = None
    if title in SCHEMA_BREAKING or not isinstance(title, str):
        if REFUSALS_FILE:
            with open(REFUSALS_FILE, "a", encoding="utf-8") as out:
                request = f"{case.method} {case.path} {json.dumps(case.body)}"
                out.write(f"{request}\n-> {response.text}\n")
        raise AssertionError(
            f"A schema-valid request was refused as breaking the schema ({title!r}): the "
            f"document and the models disagree. {response.text[:300]}"
        )
    return None
