"""``GET /usage``: the organization's calls, connected and billable time and speech use, per
UTC day, assistant, number or campaign; JSON, or CSV (``format=csv`` or ``Accept: text/csv``)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

import msgspec
from aiohttp import web

from voicedock.api.app_keys import SERVICE
from voicedock.api.audit import record_now
from voicedock.api.authentication import organization_of
from voicedock.api.body import check_query_names
from voicedock.api.models.base import convert, parse_query, reply
from voicedock.api.models.field_types import include_tests
from voicedock.api.models.usage import CSV_COLUMNS, SttUsage, TtsUsage, UsageQuery, UsageReport
from voicedock.domain.usage import GROUP_BY, MAX_RANGE_DAYS
from voicedock.errors import BadRequest
from voicedock.organizations.usage import usage_report

routes = web.RouteTableDef()

PARAMS = frozenset({"start_date", "end_date", "group_by", "format", "include_tests"})
FORMATS = ("json", "csv")
INVALID_RANGE = "Invalid date range"
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@routes.get("/usage")
async def get_usage(request: web.Request) -> web.StreamResponse:
    q = request.query
    check_query_names(q, PARAMS)
    today = datetime.now(UTC).date()
    end = _date(q.get("end_date"), "end_date") or today
    start = _date(q.get("start_date"), "start_date") or end
    # Each date well formed, the range still refused: a 400 as for latest_at before
    # scheduled_at in POST /calls/outbound (the schema cannot compare two parameters).
    if start > end:
        raise BadRequest("start_date must not be after end_date", error=INVALID_RANGE)
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise BadRequest(
            f"start_date to end_date may span at most {MAX_RANGE_DAYS} days", error=INVALID_RANGE
        )
    group_by = q.get("group_by", "day")
    if group_by not in GROUP_BY:
        raise BadRequest(f"group_by must be one of {', '.join(GROUP_BY)}")
    wanted = q.get("format")
    if wanted is not None and wanted not in FORMATS:
        raise BadRequest("format must be json or csv")
    if wanted is None:
        wanted = "csv" if _accepts_csv(request) else "json"
    tests = include_tests(q.get("include_tests"))
    parse_query(q, UsageQuery)  # and nothing the document does not say
    store = request.app[SERVICE].store
    found = await usage_report(store, organization_of(request), start, end, group_by, tests)
    report = convert(found, UsageReport)
    detail = {"format": wanted, "start_date": str(start), "end_date": str(end)}
    await record_now(request, "usage.exported", "usage", None, detail)
    if wanted == "csv":
        return web.Response(text=usage_csv(report), content_type="text/csv", charset="utf-8")
    return reply(report)


def _date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    message = f"{name} must be a date YYYY-MM-DD (a UTC day)"
    if _DATE.fullmatch(value) is None:
        raise BadRequest(message)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(message) from None


def _accepts_csv(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return "text/csv" in types and "application/json" not in types


def usage_csv(report: UsageReport) -> str:
    """One row per group and outcome (kind "calls"), per group and speech provider (kinds
    "stt", "tts"), per group and currency (kind "cost") and per group and success evaluation
    (kind "evaluation"); columns that do not apply to a row are empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for group in report.groups:
        key = group.key or ""
        for outcome in group.by_outcome:
            row = msgspec.structs.asdict(outcome)
            writer.writerow(
                {"key": key, "kind": "calls", **row, "end_reason": row["end_reason"] or ""}
            )
        speech: tuple[tuple[str, list[SttUsage] | list[TtsUsage]], ...] = (
            ("stt", group.stt),
            ("tts", group.tts),
        )
        for kind, entries in speech:
            for entry in entries:
                writer.writerow({"key": key, "kind": kind, **msgspec.structs.asdict(entry)})
        for cost in group.cost:
            writer.writerow({"key": key, "kind": "cost", **msgspec.structs.asdict(cost)})
        for evaluation in group.success_evaluations:
            writer.writerow(
                {"key": key, "kind": "evaluation", **msgspec.structs.asdict(evaluation)}
            )
    return out.getvalue()
