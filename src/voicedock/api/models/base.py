"""The two kinds of model (a request body, an answer) and their use in a handler: ``parse``
a body into its model (400 naming the field otherwise: ``refusals.py``), ``reply`` with an
answer model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, ClassVar, Generic, Self, TypeVar

import msgspec
from aiohttp import web
from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.operations import Schema
from voicedock.api.models.refusals import Reader, Refusal, refused
from voicedock.domain.json import JsonObject
from voicedock.domain.timestamps import iso


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: any field it does not name is refused (400 naming it).

    Each model passes ``kw_only=True`` too (msgspec takes it per class). ``SCHEMA``: JSON
    Schema rules across fields (which fields go together) published beside the
    fields' own; the handler's semantic checks (calls/) enforce them. ``DEFAULTS``: the
    default the document states for a field left ``UNSET`` when not sent (a PATCH's field,
    unchanged when absent). ``REFUSAL``: how a value that is no object is refused (a body
    calls/ read by hand before: in its words)."""

    SCHEMA: ClassVar[Schema] = {}
    DEFAULTS: ClassVar[dict[str, None]] = {}
    REFUSAL: ClassVar[Refusal | None] = None


class Reply(msgspec.Struct, kw_only=True):
    """An answer: serialized field by field in the documented order; a client must accept
    fields it does not know (additions)."""

    SCHEMA: ClassVar[Schema] = {}


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
R = TypeVar("R", bound=Reply)
Stored = TypeVar("Stored")


class RecordReply(Reply, Generic[Stored], kw_only=True):
    """An answer that is its stored record (a ``Stored``) as the client sees it: each field
    the record's of the same name (``of_record``)."""

    @classmethod
    def of(cls, record: Stored) -> Self:
        return of_record(cls, record)


def schema_name(name: str) -> Callable[[type[R]], type[R]]:
    """A reply whose schema in ``/openapi.json`` keeps the contract's ``name`` while its class
    says more in code (``CallReply``, beside the record ``Call``): the document names a model
    by its class's name."""

    def named(model: type[R]) -> type[R]:
        model.__name__ = model.__qualname__ = name
        return model

    return named


def parse(value: object, model: type[M], name: str = "body", *, words: Reader | None = None) -> M:
    """``value`` (parsed JSON) as ``model``; 400 whose message names the field otherwise.

    ``words``: the check of what the value means (calls/), run on the decoded value by the
    handler; a value the model refuses is refused in its words where it refuses it too (its
    ``BadRequest`` as it reads the value sent, at ``name``), in msgspec's otherwise."""
    try:
        return msgspec.convert(value, model, strict=True)
    except msgspec.ValidationError as exc:
        if words is not None:
            words(value, name)
        whole = model.REFUSAL if issubclass(model, Body) else None
        raise refused(exc, model, name, value, whole) from None


def sent(body: Body) -> JsonObject:
    """A decoded body as the JSON object of what was sent (null included, what was left out
    not), for the checks of what it means (calls/); a number as its field types it (``2`` in a
    ``float`` field: ``2.0``)."""
    built = msgspec.to_builtins(body)
    assert isinstance(built, dict)
    return built


def parse_query(query: Mapping[str, str], model: type[M]) -> M:
    """A query string as ``model`` (its numbers read from their text)."""
    try:
        return msgspec.convert(dict(query), model, strict=False)
    except msgspec.ValidationError as exc:
        raise refused(exc, model, "query", dict(query)) from None


def convert(value: object, model: type[M]) -> M:
    """An answer built as a mapping, as its model (it must match it: a 500 otherwise)."""
    return msgspec.convert(value, model)


def of_record(model: type[M], record: object, **given: object) -> M:
    """The answer ``model`` of a stored record: each of its fields the record's field of the
    same name (a moment as the product writes it: ``iso``), unless ``given``."""
    assert given.keys() <= set(model.__struct_fields__), "given: the model's own fields"
    return model(
        **{
            name: given[name] if name in given else _answered(getattr(record, name))
            for name in model.__struct_fields__
        }
    )


def _answered(value: object) -> object:
    return iso(value) if isinstance(value, datetime) else value


def template_reply(
    model: type[M],
    template_id: str,
    stored: Mapping[str, object],
    created_at: datetime,
    updated_at: datetime,
) -> M:
    """A template's answer (a tool's, an analysis plan's): its id, what it stores, its times."""
    return msgspec.convert(
        {"id": template_id, **stored, "created_at": iso(created_at), "updated_at": iso(updated_at)},
        model,
    )


_ENCODER = msgspec.json.Encoder()


def reply(value: msgspec.Struct | Mapping[str, object], status: int = 200) -> web.Response:
    """The JSON answer of a model (or a mapping of models)."""
    return web.Response(body=_ENCODER.encode(value), status=status, content_type="application/json")
