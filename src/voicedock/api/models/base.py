"""The two kinds of model (a request body, an answer) and their use in a handler: ``parse``
a body into its model (400 naming the field otherwise), ``reply`` with an answer model."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, TypeVar

import msgspec
from aiohttp import web
from msgspec import UNSET, Meta, UnsetType

from voicedock.errors import BadRequest


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: any field it does not name is refused (400 naming it).

    Each model passes ``kw_only=True`` too (msgspec takes it per class). ``SCHEMA``: JSON
    Schema rules across fields (which fields go together) published beside the
    fields' own; the handler's semantic checks (calls/) enforce them."""

    SCHEMA: ClassVar[dict[str, Any]] = {}


class Reply(msgspec.Struct, kw_only=True):
    """An answer: serialized field by field in the documented order; a client must accept
    fields it does not know (additions)."""

    SCHEMA: ClassVar[dict[str, Any]] = {}


class Error(Reply, kw_only=True):
    """Every error's documented shape: a title (docs/errors.md) and what went wrong."""

    error: str
    message: str
    call_id: (
        Annotated[
            str,
            Meta(description="The call recorded as failed, when the PBX could not place it."),
        ]
        | UnsetType
    ) = UNSET


M = TypeVar("M", bound=msgspec.Struct)
_WHERE = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`")


def parse(value: object, model: type[M], name: str = "body") -> M:
    """``value`` (parsed JSON) as ``model``; 400 whose message names the field otherwise."""
    try:
        return msgspec.convert(value, model, strict=True)
    except msgspec.ValidationError as exc:
        raise BadRequest(field_message(str(exc), name)) from None


def parse_query(query: Mapping[str, str], model: type[M]) -> M:
    """A query string as ``model`` (its numbers read from their text)."""
    try:
        return msgspec.convert(dict(query), model, strict=False)
    except msgspec.ValidationError as exc:
        raise BadRequest(field_message(str(exc), "query")) from None


def convert(value: object, model: type[M]) -> M:
    """An answer built as a mapping, as its model (it must match it: a 500 otherwise)."""
    return msgspec.convert(value, model)


def field_message(error: str, name: str = "body") -> str:
    """msgspec's ``Expected `int` >= 1 - at `$.limit``` as ``limit: expected `int` >= 1``."""
    match = _WHERE.search(error)
    where = name
    if match is not None:
        error = error[: match.start()]
        path = match["path"]
        where = path if name == "body" else f"{name}.{path}" if path else name
        where = where or name
    unknown = _UNKNOWN.match(error)
    if unknown is not None:
        return f"{where}: unknown field(s): {unknown['name']}"
    return f"{where}: {error[:1].lower()}{error[1:]}"


_ENCODER = msgspec.json.Encoder()


def reply(value: msgspec.Struct | dict[str, Any], status: int = 200) -> web.Response:
    """The JSON answer of a model (or a mapping of models)."""
    return web.Response(body=_ENCODER.encode(value), status=status, content_type="application/json")
