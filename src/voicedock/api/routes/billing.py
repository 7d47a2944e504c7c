"""``/billing``: the organization's rate card (read-only: the operator sets it with
``voicedock billing rate-cards``) and its monthly statements (docs/billing.md)."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from datetime import UTC, datetime

from aiohttp import web

from voicedock.api.app_keys import SERVICE
from voicedock.api.audit import record_now
from voicedock.api.authentication import organization_of
from voicedock.api.body import check_query_names
from voicedock.api.models.base import convert, parse_query, reply
from voicedock.api.models.billing import CSV_COLUMNS, RateCardReply, Statement, StatementQuery
from voicedock.api.statement_pdf import statement_pdf
from voicedock.domain.billing import RateCardError, month_bounds, month_of
from voicedock.errors import BadRequest, NotFound
from voicedock.organizations.statements import MonthStatement, month_statement

routes = web.RouteTableDef()

STATEMENT_PARAMS = frozenset({"month", "format"})
FORMATS = ("json", "csv", "pdf")
INVALID_MONTH = "Invalid month"
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


@routes.get("/billing/rate-card")
async def get_rate_card(request: web.Request) -> web.Response:
    store = request.app[SERVICE].store
    card = await store.current_rate_card(organization_of(request))
    if card is None:
        raise NotFound(
            "no rate card prices this organization's calls (the operator sets one)",
            error="Rate card not found",
        )
    return reply(RateCardReply.of(card))


@routes.get("/billing/statements")
async def get_statement(request: web.Request) -> web.Response:
    q = request.query
    check_query_names(q, STATEMENT_PARAMS)
    month = q.get("month") or month_of(datetime.now(UTC))
    if _MONTH.fullmatch(month) is None:
        raise BadRequest("month must be YYYY-MM (a UTC month)")
    try:  # of the right form, the month is still refused: by its own title
        month_bounds(month)
    except RateCardError as exc:
        raise BadRequest(str(exc), error=INVALID_MONTH) from None
    wanted = q.get("format", "json")
    if wanted not in FORMATS:
        raise BadRequest("format must be json, csv or pdf")
    parse_query(q, StatementQuery)  # and nothing the document does not say
    found = await month_statement(request.app[SERVICE].store, organization_of(request), month)
    await record_now(
        request, "billing.statement", "billing", None, {"month": month, "format": wanted}
    )
    if wanted == "csv":
        return web.Response(text=statement_csv(found), content_type="text/csv", charset="utf-8")
    if wanted == "pdf":
        return web.Response(
            body=statement_pdf(found),
            content_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="statement-{month}.pdf"'},
        )
    return reply(convert(dataclasses.asdict(found), Statement))


def statement_csv(statement: MonthStatement) -> str:
    """One row per line of the statement."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for line in statement.lines:
        writer.writerow(dataclasses.asdict(line))
    return out.getvalue()
