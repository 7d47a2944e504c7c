"""docs/errors.md is what the code and the OpenAPI document say (errors_doc.py renders it)."""

from __future__ import annotations

import pytest

from docs.errors_doc import DOC, render, route_statuses, titles

pytestmark = pytest.mark.unit


def test_errors_md_is_up_to_date() -> None:
    assert DOC.read_text() == render(), (
        "docs/errors.md is out of date: PYTHONPATH=src:tests python tests/docs/errors_doc.py"
    )


def test_every_status_the_code_answers_is_documented_by_some_route() -> None:
    documented = {status for errors in route_statuses().values() for status, _ in errors}
    # 500 is a bug; 405 answers a method no operation has (its Allow header names those it has)
    answered = {t.status for t in titles()} - {500, 405}
    assert answered <= documented, sorted(answered - documented)


def test_every_documented_error_status_has_a_title() -> None:
    documented = {status for errors in route_statuses().values() for status, _ in errors}
    assert documented <= {t.status for t in titles()}


def test_the_titles_include_the_classes_and_the_raise_sites() -> None:
    found = {(t.status, t.error) for t in titles()}
    assert {
        (400, "Bad request"),
        (401, "Invalid API key"),
        (415, "Unsupported media type"),
    } <= found
    assert {(404, "Assistant not found"), (400, "Unresolvable configuration")} <= found
    # A request's own content, or the node's policy, is a 400 whatever its title (the seed's).
    refused = ("Unresolvable configuration", "URL refused", "Webhook URL refused")
    assert not {(422, title) for title in refused} & found
    assert (400, "Invalid destination format") in found  # the seeds' title
    assert (403, "Destination not allowed") in found  # a class whose title is a constant
