"""``GET /usage`` in SQL: an organization's calls in a date range, aggregated by the database.

Statements grouped in SQL so the answer is the same from any node sharing the
database: the calls by group, direction and outcome (count, connected milliseconds, billable
seconds), and the speech providers' use by group, engine and provider (``Call.speech_usage``
expanded with ``json_each`` / ``jsonb_array_elements``). The definitions are
``domain/usage.py``'s: connected time from each end truncated to the millisecond, billable
seconds rounded up per started second; rated calls' costs by currency, and the analysis's
success evaluations by value. Grouped by assistant, the calls placed with a squad
are read too, with the messages that name a member, so that each member's part of them is
split as the call's own usage splits it (``member_seconds``).
"""

# Statements are assembled only from constant expressions; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict

from voicedock.domain.records import CallMessage
from voicedock.domain.usage import member_parts
from voicedock.store.base import (
    CallUsageRow,
    CostUsageRow,
    EvaluationUsageRow,
    MemberUsageRow,
    SpeechUsageRow,
    UsageQuery,
    UsageRows,
)
from voicedock.store.sql.base import StorePart
from voicedock.store.sql.conn import SqlValue
from voicedock.store.sql.rows import (
    CALL_MESSAGES,
    CALLS,
    Dialect,
    integer,
    number,
    optional_text,
    text,
)

_GROUP_COLUMNS = {
    "assistant": "c.assistant_id",
    "number": "c.number_id",
    "campaign": "c.campaign_id",
    # "<assistant id>@<version>": a saved assistant's version (A/B), NULL for inline ones
    "assistant_version": "c.assistant_id || '@' || c.assistant_version",
}
_DAY = {
    "sqlite": "substr(c.created_at, 1, 10)",  # stored as fixed-width UTC ISO 8601 text
    "postgres": "to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}
_CONNECTED_MS = {
    # julianday() reads the first three fractional digits: both ends truncated to the ms.
    "sqlite": "CAST(round((julianday(c.ended_at) - julianday(c.started_at)) * 86400000) "
    "AS INTEGER)",
    "postgres": "CAST(round(extract(epoch FROM date_trunc('milliseconds', c.ended_at) "
    "- date_trunc('milliseconds', c.started_at)) * 1000) AS BIGINT)",
}
_SPEECH_FROM = {
    "sqlite": "calls c, json_each(c.speech_usage) j",
    "postgres": "calls c CROSS JOIN LATERAL jsonb_array_elements(c.speech_usage) j",
}
_FIELD = {
    "sqlite": "json_extract(j.value, '$.{name}')",
    "postgres": "(j.value ->> '{name}')",
}
_WHERE = "c.organization_id = ? AND c.created_at >= ? AND c.created_at < ?"
# A rated call's cost (``calls.cost``, domain/billing.py's ``CallCost``) in ten-thousandths of
# its currency (no minor unit is finer): summed exactly as integers on both backends.
_COST = {
    "sqlite": (
        "json_extract(c.cost, '$.currency')",
        "CAST(round(CAST(json_extract(c.cost, '$.amount') AS REAL) * 10000) AS INTEGER)",
    ),
    "postgres": (
        "(c.cost ->> 'currency')",
        "CAST(round(CAST(c.cost ->> 'amount' AS NUMERIC) * 10000) AS BIGINT)",
    ),
}
# The post-call analysis's success evaluation (text, as the rubric's model gave it).
_EVALUATION = {
    "sqlite": "json_extract(c.analysis_result, '$.success_evaluation')",
    "postgres": "(c.analysis_result ->> 'success_evaluation')",
}


def _key(dialect: Dialect, group_by: str) -> str:
    if group_by == "day":
        return _DAY[dialect.name]
    return _GROUP_COLUMNS[group_by]


class SqlUsageReads(StorePart):
    """Usage aggregation."""

    async def usage(self, query: UsageQuery) -> UsageRows:
        name = self._dialect.name
        key = _key(self._dialect, query.group_by)
        ms = (
            f"CASE WHEN c.started_at IS NULL OR c.ended_at IS NULL THEN 0 "
            f"ELSE {_CONNECTED_MS[name]} END"
        )
        ms = f"(CASE WHEN {ms} > 0 THEN {ms} ELSE 0 END)"
        args = (query.organization_id, self._dialect.dt(query.start), self._dialect.dt(query.end))
        where = _WHERE if query.include_tests else f"{_WHERE} AND c.test_run_id IS NULL"
        call_rows = await self._reader.fetch(
            f"SELECT {key} AS key, c.direction AS direction, c.status AS status, "
            f"c.end_reason AS end_reason, count(*) AS calls, sum({ms}) AS connected_ms, "
            f"sum(({ms} + 999) / 1000) AS billable_seconds "
            f"FROM calls c WHERE {where} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
            *args,
        )
        field = _FIELD[name]
        kind, provider = field.format(name="kind"), field.format(name="provider")
        seconds, characters = field.format(name="seconds"), field.format(name="characters")
        if name == "postgres":
            seconds, characters = f"CAST({seconds} AS FLOAT8)", f"CAST({characters} AS BIGINT)"
        speech_rows = await self._reader.fetch(
            f"SELECT {key} AS key, {kind} AS kind, {provider} AS provider, "
            f"sum(COALESCE({seconds}, 0)) AS seconds, "
            f"sum(COALESCE({characters}, 0)) AS characters "
            f"FROM {_SPEECH_FROM[name]} WHERE {where} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            *args,
        )
        members = await self._members(where, args) if query.group_by == "assistant" else []
        currency, amount = _COST[name]
        cost_rows = await self._reader.fetch(
            f"SELECT {key} AS key, {currency} AS currency, sum({amount}) AS amount, "
            f"count(*) AS calls FROM calls c WHERE {where} AND c.cost IS NOT NULL "
            "GROUP BY 1, 2 ORDER BY 1, 2",
            *args,
        )
        evaluation = _EVALUATION[name]
        evaluation_rows = await self._reader.fetch(
            f"SELECT {key} AS key, {evaluation} AS value, count(*) AS calls FROM calls c "
            f"WHERE {where} AND {evaluation} IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
            *args,
        )
        return UsageRows(
            members=members,
            costs=[
                CostUsageRow(
                    key=None if r["key"] is None else str(r["key"]),
                    currency=text(r["currency"]),
                    ten_thousandths=integer(r["amount"]),
                    calls=integer(r["calls"]),
                )
                for r in cost_rows
            ],
            evaluations=[
                EvaluationUsageRow(
                    key=None if r["key"] is None else str(r["key"]),
                    value=text(r["value"]),
                    calls=integer(r["calls"]),
                )
                for r in evaluation_rows
            ],
            calls=[
                CallUsageRow(
                    key=None if r["key"] is None else str(r["key"]),
                    direction=text(r["direction"]),
                    status=text(r["status"]),
                    end_reason=optional_text(r["end_reason"]),
                    calls=integer(r["calls"]),
                    connected_ms=integer(r["connected_ms"] or 0),
                    billable_seconds=integer(r["billable_seconds"] or 0),
                )
                for r in call_rows
            ],
            speech=[
                SpeechUsageRow(
                    key=None if r["key"] is None else str(r["key"]),
                    kind=text(r["kind"]),
                    provider=text(r["provider"]),
                    seconds=number(r["seconds"] or 0),
                    characters=integer(r["characters"] or 0),
                )
                for r in speech_rows
            ],
        )

    async def _members(self, where: str, args: tuple[SqlValue, ...]) -> list[MemberUsageRow]:
        """Each connected squad call's parts by member, keyed by the call's assistant."""
        squads = f"{where} AND c.squad IS NOT NULL AND c.started_at IS NOT NULL"
        calls = await self._reader.fetch(f"SELECT c.* FROM calls c WHERE {squads}", *args)
        named = await self._reader.fetch(
            "SELECT m.* FROM call_messages m JOIN calls c ON c.id = m.call_id "
            f"WHERE {squads} AND m.member IS NOT NULL ORDER BY m.seq",
            *args,
        )
        messages: defaultdict[str, list[CallMessage]] = defaultdict(list)
        for row in named:
            message = CALL_MESSAGES.decode(row, self._dialect)
            messages[message.call_id].append(message)
        rows: list[MemberUsageRow] = []
        for row in calls:
            call = CALLS.decode(row, self._dialect)
            rows += [
                MemberUsageRow(call.assistant_id, part.assistant_id, part.connected_ms)
                for part in member_parts(call, messages[call.id])
            ]
        return rows
