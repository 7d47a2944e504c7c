"""``GET /usage``: an organization's usage over UTC days, folded from the store's SQL
aggregation (``store/sql/usage.py``) into one object per group, and totals.

The numbers are defined in ``domain/usage.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from voicedock.domain.billing import rounded
from voicedock.domain.json import JsonObject, JsonValue
from voicedock.domain.usage import STT, TTS
from voicedock.store.base import (
    CallUsageRow,
    CostUsageRow,
    EvaluationUsageRow,
    SpeechUsageRow,
    Store,
    UsageQuery,
    UsageRows,
)


async def usage_report(
    store: Store,
    organization_id: str,
    start: date,
    end: date,
    group_by: str,
    include_tests: bool = False,
) -> JsonObject:
    """Usage of the calls created from ``start`` to ``end`` (UTC days, both included);
    ``include_tests``: test suites' calls too."""
    rows = await store.usage(
        UsageQuery(
            organization_id,
            datetime.combine(start, time(), UTC),
            datetime.combine(end + timedelta(days=1), time(), UTC),
            group_by,
            include_tests,
        )
    )
    spoke = _assistant_ms(rows) if group_by == "assistant" else {}
    keys = sorted(
        {r.key for r in rows.calls} | {r.key for r in rows.speech} | spoke.keys(),
        key=lambda k: (k is None, k or ""),
    )
    groups: list[JsonValue] = []
    for key in keys:
        group: JsonObject = {"key": key, **_group(_only(rows, key))}
        if group_by == "assistant":
            group["assistant_seconds"] = spoke.get(key, 0) / 1000
        groups.append(group)
    return {
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "group_by": group_by,
        "groups": groups,
        "totals": _group(rows),
    }


def _assistant_ms(rows: UsageRows) -> dict[str | None, int]:
    """The connected milliseconds each assistant had: its calls' whole time, but of a call
    placed with a squad only its member's part, the other members' parts theirs."""
    spoke: dict[str | None, int] = {}
    for r in rows.calls:
        spoke[r.key] = spoke.get(r.key, 0) + r.connected_ms
    for m in rows.members:
        spoke[m.key] = max(0, spoke.get(m.key, 0) - m.connected_ms)
        spoke[m.assistant_id] = spoke.get(m.assistant_id, 0) + m.connected_ms
    return spoke


def _only(rows: UsageRows, key: str | None) -> UsageRows:
    return UsageRows(
        calls=[r for r in rows.calls if r.key == key],
        speech=[r for r in rows.speech if r.key == key],
        costs=[r for r in rows.costs if r.key == key],
        evaluations=[r for r in rows.evaluations if r.key == key],
    )


def _group(rows: UsageRows) -> JsonObject:
    connected_ms = sum(r.connected_ms for r in rows.calls)
    return {
        "calls": sum(r.calls for r in rows.calls),
        "connected_seconds": connected_ms / 1000,
        "connected_minutes": round(connected_ms / 60000, 2),
        "billable_seconds": sum(r.billable_seconds for r in rows.calls),
        "by_outcome": _outcomes(rows.calls),
        "stt": _speech(rows.speech, STT),
        "tts": _speech(rows.speech, TTS),
        "cost": _costs(rows.costs),
        "success_evaluations": _evaluations(rows.evaluations),
    }


def _costs(rows: Iterable[CostUsageRow]) -> list[JsonValue]:
    """The rated calls' costs summed per currency, each to its minor unit."""
    sums: dict[str, list[int]] = {}
    for r in rows:
        summed = sums.setdefault(r.currency, [0, 0])
        summed[0] += r.ten_thousandths
        summed[1] += r.calls
    return [
        {
            "currency": currency,
            "amount": str(rounded(Decimal(amount).scaleb(-4), currency)),
            "calls": calls,
        }
        for currency, (amount, calls) in sorted(sums.items())
    ]


# The success evaluations reported per group: the most frequent, each cut to its first
# characters (a rubric that asks for free text gives many values).
EVALUATIONS_SHOWN = 10
EVALUATION_CHARS = 100


def _evaluations(rows: Iterable[EvaluationUsageRow]) -> list[JsonValue]:
    """How many calls the analysis evaluated with each value, the most frequent first."""
    counts: dict[str, int] = {}
    for r in rows:
        value = r.value.strip()[:EVALUATION_CHARS]
        counts[value] = counts.get(value, 0) + r.calls
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"value": value, "calls": calls} for value, calls in ranked[:EVALUATIONS_SHOWN]]


def _outcomes(rows: Iterable[CallUsageRow]) -> list[JsonValue]:
    merged: dict[tuple[str, str, str | None], list[int]] = {}
    for r in rows:
        sums = merged.setdefault((r.direction, r.status, r.end_reason), [0, 0, 0])
        sums[0] += r.calls
        sums[1] += r.connected_ms
        sums[2] += r.billable_seconds
    return [
        {
            "direction": direction,
            "status": status,
            "end_reason": end_reason,
            "calls": calls,
            "connected_seconds": ms / 1000,
            "billable_seconds": billable,
        }
        for (direction, status, end_reason), (calls, ms, billable) in sorted(
            merged.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or "")
        )
    ]


def _speech(rows: Iterable[SpeechUsageRow], kind: str) -> list[JsonValue]:
    seconds: dict[str, float] = {}
    characters: dict[str, int] = {}
    for r in rows:
        if r.kind != kind:
            continue
        seconds[r.provider] = seconds.get(r.provider, 0.0) + r.seconds
        characters[r.provider] = characters.get(r.provider, 0) + r.characters
    if kind == STT:
        return [{"provider": p, "audio_seconds": round(seconds[p], 3)} for p in sorted(seconds)]
    return [{"provider": p, "characters": characters[p]} for p in sorted(characters)]
