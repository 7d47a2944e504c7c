"""Reading request bodies and query strings strictly (pure helpers plus one aiohttp reader)."""

from __future__ import annotations

import json
import re
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta

from aiohttp import web
from multidict import MultiMapping

from voicedock.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from voicedock.store.base import CallCursor

_ASCII_INT = re.compile(r"[0-9]{1,10}")
_ISO_CHARS = re.compile(r"[0-9T:.+\-Z ]{10,35}")
# The largest ``offset`` a list takes (query_int reads at most 10 digits).
MAX_OFFSET = 1_000_000_000
JSON_TYPES = frozenset({"application/json"})


def require_json_type(request: web.Request) -> None:
    """415 when the request declares a body of another type than JSON (no ``Content-Type``:
    read as JSON)."""
    declared = request.headers.get("Content-Type")
    if declared is not None and request.content_type not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"the body must be JSON (Content-Type: application/json), not {request.content_type}"
        )


async def read_json(request: web.Request, max_bytes: int) -> object:
    """The JSON body; 415 for a body declared of another type, 413 above ``max_bytes``, 400
    for anything that is not strict JSON."""
    require_json_type(request)
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    return parse_json(await read_body(request, max_bytes))


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The whole body (a read returns what has arrived so far: read until its end); 413
    above ``max_bytes``."""
    raw = bytearray()
    while len(raw) <= max_bytes:
        chunk = await request.content.read(max_bytes + 1 - len(raw))
        if not chunk:
            return bytes(raw)
        raw += chunk
    raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")


def parse_json(raw: bytes) -> object:
    if not raw.strip():
        raise BadRequest("a JSON request body is required", error="Invalid JSON")
    try:
        return json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
            parse_float=_number,
        )
    except UnicodeDecodeError:
        raise BadRequest("the body must be UTF-8", error="Invalid JSON") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", error="Invalid JSON") from None


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _number(text: str) -> int | float:
    """``56.0`` is the integer 56, as JSON Schema (and so the documented schema) counts it."""
    value = float(text)
    return int(value) if value.is_integer() else value


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def canonical_hash_input(body: object) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def check_query_names(query: MultiMapping[str], allowed: AbstractSet[str]) -> None:
    """400 for a query parameter ``allowed`` does not hold, or one given twice."""
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}")
    if any(len(query.getall(name)) > 1 for name in query):
        raise BadRequest("each query parameter may appear only once")


def query_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if _ASCII_INT.fullmatch(value) is None:
        raise BadRequest(f"{name} must be an integer between {low} and {high}")
    number = int(value)
    if not low <= number <= high:
        raise BadRequest(f"{name} must be an integer between {low} and {high}")
    return number


def query_datetime(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    if _ISO_CHARS.fullmatch(value) is None:
        raise BadRequest(f"{name} must be an ISO 8601 date-time, e.g. 2025-12-13T10:00:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(
            f"{name} must be an ISO 8601 date-time, e.g. 2025-12-13T10:00:00Z"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# ``next_cursor``: the last listed call's creation time (µs since the epoch, up to year 2286)
# and seq; a client passes it back unchanged.
CURSOR_PATTERN = r"^([0-9]{1,16}\.[0-9]{1,18})?$"
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NOT_A_CURSOR = "cursor is not a cursor this API returned"


def encode_cursor(after: CallCursor) -> str:
    micros = (after.created_at.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{after.seq}"


def decode_cursor(value: str | None) -> CallCursor | None:
    """An empty ``cursor=`` is no cursor (the first page)."""
    if not value:
        return None
    match = _CURSOR.fullmatch(value)
    if match is None:
        raise BadRequest(_NOT_A_CURSOR)
    micros, seq = value.split(".")
    return CallCursor(_EPOCH + timedelta(microseconds=int(micros)), int(seq))
