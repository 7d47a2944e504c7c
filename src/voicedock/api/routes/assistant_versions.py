"""``/assistants/{id}/versions`` (list, one version with what it changed),
``POST /assistants/{id}/rollback`` (a version's settings the assistant's again, as its next
version, checked as a PATCH is: the provider rules, the egress policy, the references),
``/drafts``, ``/publish`` and ``/release-gate`` (a version saved without going live, made live
when the gate's test suite passed it) and ``/assistants/{id}/traffic-split`` (its calls split
between versions)."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from voicedock.api.body import read_json
from voicedock.api.models.assistant_versions import (
    AssistantPublish,
    AssistantRollback,
    AssistantVersionList,
    ReleaseGate,
    TrafficSplit,
    version_detail,
    version_summary,
)
from voicedock.api.models.assistants import assistant_reply
from voicedock.api.models.base import parse, reply
from voicedock.api.models.record_versions import version_number
from voicedock.api.resources import Caller, caller_of
from voicedock.api.routes.assistants import (
    ASSISTANTS,
    parse_assistant,
    refs_checked,
    store_changed_assistant,
)
from voicedock.calls.assistants.resolve import UNKNOWN_VERSION
from voicedock.domain.records import Assistant, AssistantVersion
from voicedock.domain.rehearsal import RunStatus
from voicedock.domain.traffic_split import each_version_once
from voicedock.errors import Conflict, NotFound, Unprocessable
from voicedock.store.base import Store, Transaction

routes = web.RouteTableDef()

_VERSIONS = f"{ASSISTANTS.item_path}/versions"
VERSION_NOT_FOUND = "Assistant version not found"
GATE_NOT_PASSED = "Release gate not passed"
NOT_A_DRAFT = "Not a draft"
DRAFT = "Draft version"


@routes.get(_VERSIONS)
async def list_versions(request: web.Request) -> web.Response:
    """The assistant's versions, newest first, each with the settings it changed."""
    caller = caller_of(request)
    assistant = await ASSISTANTS.fetch(request)
    versions = await caller.store.list_assistant_versions(caller.organization_id, assistant.id)
    earlier = [*versions[1:], None]
    return reply(
        AssistantVersionList(
            versions=[version_summary(v, e) for v, e in zip(versions, earlier, strict=True)]
        )
    )


@routes.get(f"{_VERSIONS}/{{version}}")
async def get_version(request: web.Request) -> web.Response:
    """One version: the assistant as it was, and what it changed of the version before."""
    caller = caller_of(request)
    assistant = await ASSISTANTS.fetch(request)
    number = version_number(request.match_info["version"])
    version = await _version(caller.store, assistant, number)
    before = await _version_or_none(caller.store, assistant, version.version - 1)
    return reply(version_detail(version, before, assistant))


@routes.post(f"{ASSISTANTS.item_path}/drafts")
async def save_draft(request: web.Request) -> web.Response:
    """A PATCH body onto the assistant's live settings, stored as its next version, a draft:
    checked as a PATCH is, tested by naming its version in a test run, live when published."""
    caller = caller_of(request).auditing(ASSISTANTS.audit, "updated")
    assistant = await ASSISTANTS.fetch(request)
    body = await read_json(request, caller.service.settings.server.max_body_bytes)
    changed = parse_assistant(caller, assistant, body)
    made: list[AssistantVersion] = []

    async def write(tx: Transaction, draft: Assistant, by: str | None) -> None:
        made.append(await tx.insert_assistant_draft(draft, by))

    await refs_checked(write)(caller, changed)
    (draft,) = made
    before = await _version_or_none(caller.store, assistant, assistant.version)
    return reply(version_detail(draft, before, assistant), 201)


@routes.post(f"{ASSISTANTS.item_path}/publish")
async def publish(request: web.Request) -> web.Response:
    """The draft named live: the settings the assistant's calls run from now on (409 for a
    version that is no draft, or one its release gate's suite has not passed)."""
    caller = caller_of(request).auditing(ASSISTANTS.audit, "updated")
    assistant = await ASSISTANTS.fetch(request)
    body = await read_json(request, caller.service.settings.server.max_body_bytes)
    asked = parse(body, AssistantPublish)
    version = await _version(caller.store, assistant, asked.version)
    if not version.draft:
        raise Conflict(
            f"version {version.version} is no draft: it was published; make it the assistant's "
            "again with POST /assistants/{id}/rollback",
            error=NOT_A_DRAFT,
        )
    await _gate_passed(caller, assistant, version)
    live = version.restored(assistant)

    async def write(tx: Transaction, published: Assistant, _by: str | None) -> None:
        await tx.publish_assistant_version(published)

    # Checked as a PATCH is (the provider rules, the egress policy, the references it names).
    return reply(assistant_reply(await refs_checked(write)(caller, live)))


@routes.put(f"{ASSISTANTS.item_path}/release-gate")
async def set_release_gate(request: web.Request) -> web.Response:
    """The test suite (the organization's: 422 ``Unknown test suite``) a version must pass
    before it is published or split to; changes go through drafts from now on."""
    caller = caller_of(request).auditing(ASSISTANTS.audit, "updated")
    assistant = await ASSISTANTS.fetch(request)
    body = await read_json(request, caller.service.settings.server.max_body_bytes)
    gate = parse(body, ReleaseGate)
    if await caller.store.get_suite(caller.organization_id, gate.test_suite_id) is None:
        raise Unprocessable("test_suite_id: no test suite with this id", error="Unknown test suite")
    gated = dataclasses.replace(assistant, release_gate=gate.test_suite_id)
    return reply(assistant_reply(await _released(caller, gated)))


@routes.delete(f"{ASSISTANTS.item_path}/release-gate")
async def remove_release_gate(request: web.Request) -> web.Response:
    """No gate: drafts are published without a run, and PATCH changes the assistant again."""
    caller = caller_of(request).auditing(ASSISTANTS.audit, "updated")
    assistant = await ASSISTANTS.fetch(request)
    ungated = dataclasses.replace(assistant, release_gate=None)
    return reply(assistant_reply(await _released(caller, ungated)))


async def _gate_passed(caller: Caller, assistant: Assistant, version: AssistantVersion) -> None:
    """409 ``Release gate not passed`` unless the newest run of the assistant's release gate's
    suite on ``version`` passed (the run's id, status and reason in the answer); 409 ``Release
    gate required`` for an assistant without a gate on a node that requires one."""
    suite_id = assistant.release_gate
    if suite_id is None:
        if caller.service.settings.rehearsal.release_gate_required:
            raise Conflict(
                "this node publishes only versions a test suite passed: set the assistant's "
                "release gate (PUT /assistants/{id}/release-gate)",
                error="Release gate required",
            )
        return
    number = version.version
    if await caller.store.get_suite(caller.organization_id, suite_id) is None:
        raise Conflict(
            f"the release gate's test suite {suite_id} no longer exists: set another gate",
            error=GATE_NOT_PASSED,
        )
    run = await caller.store.latest_suite_run_of_version(
        caller.organization_id, suite_id, assistant.id, number
    )
    if run is None:
        raise Conflict(
            f"no run of the release gate's test suite on version {number}: POST "
            f'/test-suites/{suite_id}/runs with {{"assistant_version": {number}}}',
            error=GATE_NOT_PASSED,
        )
    if run.status is not RunStatus.PASSED:
        reasons = [r.reason for r in run.results if r.reason is not None]
        why = run.error or (reasons[0] if reasons else None)
        raise Conflict(
            f"the newest run of the release gate's test suite on version {number} is "
            f"{run.status.value}" + ("" if why is None else f": {why}"),
            error=GATE_NOT_PASSED,
            extra={"test_run_id": run.id, "test_run_status": run.status.value},
        )


@routes.post(f"{ASSISTANTS.item_path}/rollback")
async def rollback(request: web.Request) -> web.Response:
    """The version's settings (name, business name, active, configuration) as the assistant's
    next version; 404 for a version it never had, 409 for a draft (never live: published, not
    rolled back to)."""
    caller = caller_of(request).auditing(ASSISTANTS.audit, "updated")
    assistant = await ASSISTANTS.fetch(request)
    body = await read_json(request, caller.service.settings.server.max_body_bytes)
    asked = parse(body, AssistantRollback)
    version = await _version(caller.store, assistant, asked.version)
    if version.draft:
        raise Conflict(
            f"version {version.version} is a draft, never live: publish it "
            "(POST /assistants/{id}/publish)",
            error=DRAFT,
        )
    restored = version.restored(assistant)
    # What the operator's policy or the node refuses now is refused, as a PATCH would be (the
    # provider rules and the egress policy first: ``refs_checked``).
    return reply(assistant_reply(await store_changed_assistant(caller, restored)))


_SPLIT = f"{ASSISTANTS.item_path}/traffic-split"


@routes.put(_SPLIT)
async def split_traffic(request: web.Request) -> web.Response:
    """The assistant's calls by reference split between the versions named, by weight; each
    version once (400) and one the assistant has (422 ``Unknown assistant version``)."""
    caller = caller_of(request).auditing(ASSISTANTS.audit, "updated")
    assistant = await ASSISTANTS.fetch(request)
    body = await read_json(request, caller.service.settings.server.max_body_bytes)
    split = parse(body, TrafficSplit)
    numbers = [share.version for share in split.versions]
    each_version_once(numbers, "versions")
    for number in numbers:
        version = await _version_or_none(caller.store, assistant, number)
        if version is None:
            raise Unprocessable(
                f"versions: the assistant has no version {number}", error=UNKNOWN_VERSION
            )
        if version.draft:  # a draft reaches callers as a publish would make it
            await _gate_passed(caller, assistant, version)
    shares = [s.share() for s in split.versions]
    shared = dataclasses.replace(assistant, traffic_split=shares)
    return reply(assistant_reply(await _released(caller, shared)))


@routes.delete(_SPLIT)
async def end_split(request: web.Request) -> web.Response:
    """No split: the assistant's calls run its current version."""
    caller = caller_of(request).auditing(ASSISTANTS.audit, "updated")
    assistant = await ASSISTANTS.fetch(request)
    whole = dataclasses.replace(assistant, traffic_split=None)
    return reply(assistant_reply(await _released(caller, whole)))


async def _released(caller: Caller, assistant: Assistant) -> Assistant:
    """The assistant's traffic split and release gate stored as ``assistant`` has them."""
    async with caller.store.transaction() as tx:
        await tx.set_assistant_release(assistant)
        await caller.record(tx, assistant.id)
    return assistant


async def _version(store: Store, assistant: Assistant, number: int | None) -> AssistantVersion:
    """The assistant's version ``number`` (None: a path naming none); 404 otherwise."""
    if number is None:
        raise _not_found()
    version = await _version_or_none(store, assistant, number)
    if version is None:
        raise _not_found()
    return version


async def _version_or_none(
    store: Store, assistant: Assistant, number: int
) -> AssistantVersion | None:
    if number < 1:
        return None
    return await store.get_assistant_version(assistant.organization_id, assistant.id, number)


def _not_found() -> NotFound:
    return NotFound("the assistant has no such version", error=VERSION_NOT_FOUND)
