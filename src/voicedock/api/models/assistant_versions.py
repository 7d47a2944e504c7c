"""``/assistants/{id}/versions`` and ``/assistants/{id}/rollback``: every change to an assistant
is a version of it, kept as it was; what a version changed of the one before; a rollback makes
a version's settings the assistant's again, as its next version. ``/drafts``, ``/publish`` and
``/release-gate``: a version saved without going live, made live when a test suite passed it
(docs/assistant-versions.md)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from voicedock.api.models.assistants import Assistant, AssistantUpdate, assistant_reply
from voicedock.api.models.base import Body, Reply
from voicedock.api.models.field_types import Id
from voicedock.api.models.operations import Schema, operation, path_parameter
from voicedock.api.models.record_versions import (
    VERSION_MAX,
    VersionChange,
    VersionNumber,
    VersionSummary,
)
from voicedock.domain.assistant_config import config_json
from voicedock.domain.records import Assistant as AssistantRecord
from voicedock.domain.records import AssistantVersion as VersionRecord
from voicedock.domain.secret_fields import masked
from voicedock.domain.timestamps import iso
from voicedock.domain.traffic_split import SHARES, WEIGHT
from voicedock.domain.traffic_split import TrafficShare as DomainShare

_PROFILE = ("name", "business_name", "active")


class AssistantVersionChange(VersionChange, kw_only=True):
    """One setting a version changed: its value before and after (null: not set); provider
    keys and MCP headers masked, as an assistant's are."""


class AssistantVersionSummary(VersionSummary, kw_only=True):
    # Its fields are a squad's version's (VersionSummary); published_at: when it went live
    # (null: a draft, POST /assistants/{id}/drafts, not yet published).
    pass


class AssistantVersionList(Reply, kw_only=True):
    versions: list[AssistantVersionSummary]  # newest first


class AssistantVersionDetail(AssistantVersionSummary, kw_only=True):
    changes: list[AssistantVersionChange]
    assistant: Assistant  # type: ignore[valid-type]  # as it was in this version


class AssistantRollback(Body, kw_only=True):
    version: VersionNumber


class AssistantPublish(Body, kw_only=True):
    """The version (a draft, or one live before) whose settings the assistant's calls run
    from now on; with a release gate, only one a run of the gate's suite passed."""

    version: VersionNumber


class ReleaseGate(Body, kw_only=True):
    """The test suite whose passing run on a version lets it be published or split to."""

    test_suite_id: Id


class TrafficShareBody(Body, kw_only=True):
    version: VersionNumber
    weight: Annotated[int, Meta(ge=WEIGHT[0], le=WEIGHT[1])]

    def share(self) -> DomainShare:
        return DomainShare(version=self.version, weight=self.weight)


class TrafficSplit(Body, kw_only=True):
    """Versions of the assistant (each once) and their weights: a call by reference runs one of
    them, chosen by the other party's number (the callee; an inbound call's caller)."""

    versions: Annotated[list[TrafficShareBody], Meta(min_length=SHARES[0], max_length=SHARES[1])]


def _settings(version: VersionRecord) -> dict[str, object]:
    """A version's settings as an assistant's answer shows them (keys masked), null ones out."""
    shown: dict[str, object] = {
        "name": version.name,
        "business_name": version.business_name or None,
        "active": version.active,
        **masked(config_json(version.config)),
    }
    return {key: value for key, value in shown.items() if value is not None}


def version_changes(
    version: VersionRecord, before: VersionRecord | None
) -> list[AssistantVersionChange]:
    """What ``version`` changed of ``before`` (None: it is the first), setting by setting."""
    now, then = _settings(version), {} if before is None else _settings(before)
    keys = [k for k in _PROFILE if k in now or k in then]
    keys += sorted((now.keys() | then.keys()) - set(_PROFILE))
    return [
        AssistantVersionChange(setting=key, before=then.get(key), after=now.get(key))
        for key in keys
        if now.get(key) != then.get(key)
    ]


def version_summary(
    version: VersionRecord, before: VersionRecord | None
) -> AssistantVersionSummary:
    return AssistantVersionSummary(
        version=version.version,
        created_at=iso(version.created_at),
        created_by=version.created_by,
        published_at=iso(version.published_at),
        changed=[change.setting for change in version_changes(version, before)],
    )


def version_detail(
    version: VersionRecord, before: VersionRecord | None, now: AssistantRecord
) -> AssistantVersionDetail:
    """``version`` of the assistant ``now`` is, with what it changed of ``before``."""
    as_it_was = version.restored(now)
    as_it_was.updated_at, as_it_was.traffic_split = version.created_at, None
    changes = version_changes(version, before)
    return AssistantVersionDetail(
        version=version.version,
        created_at=iso(version.created_at),
        created_by=version.created_by,
        published_at=iso(version.published_at),
        changed=[change.setting for change in changes],
        changes=changes,
        assistant=assistant_reply(as_it_was),
    )


def _release_setting(
    set_summary: str, body: type[Body], removed_summary: str, *, gated: bool = False
) -> Schema:
    """How the assistant's versions reach callers (its traffic split, its release gate): set
    by a PUT of ``body``, removed by a DELETE; both answer the assistant. ``gated``: the PUT
    reaches callers with a draft as a publish would, so its release gate may refuse it (409)."""
    errors = "400 401 403 404 409 413 422" if gated else "400 401 403 404 413 422"
    return {
        "put": operation(set_summary, ("200", Assistant), body=body, errors=errors),
        "delete": operation(removed_summary, ("200", Assistant), errors="401 403 404"),
    }


_VERSION_PARAMETER = path_parameter(
    "version", {"type": "integer", "minimum": 1, "maximum": VERSION_MAX}
)
PATHS: dict[str, Schema] = {
    "/assistants/{id}/versions": {
        "get": operation(
            "List an assistant's versions, newest first",
            ("200", AssistantVersionList),
            errors="401 404",
        ),
    },
    "/assistants/{id}/versions/{version}": {
        "get": operation(
            "Get a version of an assistant: its settings then and what it changed",
            ("200", AssistantVersionDetail),
            params=[_VERSION_PARAMETER],
            errors="401 404",
        ),
    },
    "/assistants/{id}/traffic-split": _release_setting(
        "Split the assistant's calls between its versions by weight (A/B), sticky per party",
        TrafficSplit,
        "End the split: the assistant's calls run its current version again",
        gated=True,
    ),
    "/assistants/{id}/drafts": {
        "post": operation(
            "Save changes as a draft: the assistant's next version, not live until published",
            ("201", AssistantVersionDetail),
            body=AssistantUpdate,
            errors="400 401 403 404 413 422",
        ),
    },
    "/assistants/{id}/publish": {
        "post": operation(
            "Make a version (a draft) the one the assistant's calls run; with a release gate, "
            "only one its test suite passed",
            ("200", Assistant),
            body=AssistantPublish,
            errors="400 401 403 404 409 413 422",
        ),
    },
    "/assistants/{id}/release-gate": _release_setting(
        "Gate the assistant's releases on a test suite: a version is published (or split "
        "to) only after a run of the suite on it passed",
        ReleaseGate,
        "Remove the release gate",
    ),
    "/assistants/{id}/rollback": {
        "post": operation(
            "Make a version's settings the assistant's again, as its next version",
            ("200", Assistant),
            body=AssistantRollback,
            errors="400 401 403 404 409 413 422",
        ),
    },
}
MODELS = (
    AssistantVersionChange,
    AssistantVersionSummary,
    AssistantVersionList,
    AssistantVersionDetail,
    AssistantRollback,
    AssistantPublish,
    ReleaseGate,
    TrafficShareBody,
    TrafficSplit,
)
