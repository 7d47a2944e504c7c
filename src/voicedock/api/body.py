"""Reading request bodies and query strings strictly (pure helpers plus one aiohttp reader)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from voicedock.errors import BadRequest, PayloadTooLarge
from voicedock.store.base import CallCursor

_ASCII_INT = re.compile(r"[0-9]{1,9}")
_ISO_CHARS = re.compile(r"[0-9T:.+\-Z ]{10,35}")


async def read_json(request: web.Request, max_bytes: int) -> object:
    """The JSON body; 413 above ``max_bytes``, 400 for anything that is not strict JSON."""
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
            raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants
        )
    except UnicodeDecodeError:
        raise BadRequest("the body must be UTF-8", error="Invalid JSON") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", error="Invalid JSON") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def canonical_hash_input(body: object) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


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


_CURSOR = re.compile(r"([0-9]{1,18})\.([0-9]{1,18})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NOT_A_CURSOR = "cursor is not a cursor this API returned"


def encode_cursor(after: CallCursor) -> str:
    """``next_cursor``: the last listed call's creation time (µs since the epoch) and seq."""
    micros = (after.created_at.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"{micros}.{after.seq}".encode()).decode().rstrip("=")


def decode_cursor(value: str | None) -> CallCursor | None:
    """An empty ``cursor=`` is no cursor (the first page)."""
    if not value:
        return None
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise BadRequest(_NOT_A_CURSOR) from None
    match = _CURSOR.fullmatch(text)
    if match is None:
        raise BadRequest(_NOT_A_CURSOR)
    try:
        created_at = _EPOCH + timedelta(microseconds=int(match[1]))
    except OverflowError:
        raise BadRequest(_NOT_A_CURSOR) from None
    return CallCursor(created_at, int(match[2]))
