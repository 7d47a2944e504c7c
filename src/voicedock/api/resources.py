"""One resource layer: the REST API's list/get/create/patch/delete handlers, made from a small
declarative description per resource (``Resource``) that the ``api/routes/`` modules configure.

What every resource shares is written here once:

- **the id in the path**: a value the resource's ``is_id`` refuses is its 404 (never a store
  query); a record of another organization is the same 404 as none (``lookup`` reads within
  the caller's organization), with the resource's error title;
- **lists**: unpaged (``{"<plural>": [...]}``), or paged by ``limit`` (1-1000, default 100) and
  ``offset`` (0-``MAX_OFFSET``) with a ``pagination`` object, unknown or repeated query
  parameters refused, and a ``next_cursor`` where the resource pages by cursor;
- **create**: the JSON body (415, 413, 400), ``parse`` then ``run``, then the ``reply``
  (``201`` with the new record unless the resource answers otherwise); an ``Idempotency-Key``
  header where the resource takes one (``Idempotent-Replayed: true`` on a replayed answer);
- **patch**: 404 first, then the body, ``parse`` and ``run``; ``200`` with the record;
- **delete**: 404 first, then ``run``; ``204`` unless the resource answers with a body;
- **refusals**: an operation a resource refuses to every key (``Refused``), after its 404;
- **the key scope**: a resource that needs more than the read-only rule (``scope``) is refused
  by the auth middleware before anything else runs (``scoped_paths``);
- **deprecated aliases**: the same resource at an older path (``alias``), same bodies, each
  answer flagged with ``Deprecation``, ``Warning: 299`` and ``Link`` (``deprecation_headers``).

Validating a body and serializing a record stay single calls the description names
(``parse``, ``serialize``, ``reply``): ``parse`` reads the body once, with
``models.base.parse`` and the request model, and gives what the model makes (the value
``calls/`` takes, what no schema states checked on it); an assistant, a tool template and an
analysis template are read by their configuration's check (``calls/assistants/config.py``,
``calls/tools/config.py``), then their model, until the assistant configuration is typed.
``serialize`` is an answer model's ``.of``; every answer is written by ``models.base.reply``
(the models' encoder), the lists as ``{"<plural>": [models...], "pagination": {...}}``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler
from msgspec import UnsetType

from voicedock.api.app_keys import API_KEY, SERVICE
from voicedock.api.audit import Actor, Audited, Doing, Operation
from voicedock.api.authentication import organization_of
from voicedock.api.body import (
    MAX_OFFSET,
    canonical_hash_input,
    check_query_names,
    query_int,
    read_json,
)
from voicedock.api.models.base import parse_query
from voicedock.api.models.base import reply as encode
from voicedock.api.models.calls import OldestFirstPageQuery
from voicedock.calls.assistants.referencing import refuse_while_referenced
from voicedock.calls.outbound.idempotency import IdempotencyKey
from voicedock.domain.json import JsonValue
from voicedock.domain.records import ApiKey, KeyScope
from voicedock.errors import ApiError, BadRequest, Conflict, NotFound
from voicedock.store.base import OldestFirstQuery, RecordPage
from voicedock.validation import is_token

if TYPE_CHECKING:
    from voicedock.service import Service
    from voicedock.store.base import Store, Transaction

Answer = msgspec.Struct | Mapping[str, object]  # what ``models.base.reply`` writes
R = TypeVar("R")  # a resource's record
P = TypeVar("P")  # a parsed request body
C = TypeVar("C")  # what a create or delete gives back
Op = TypeVar("Op")  # an operation on one record
R_in = TypeVar("R_in", contravariant=True)


class Identified(Protocol):
    """A record found by its id."""

    @property
    def id(self) -> str: ...


class Owned(Identified, Protocol):
    """A record of one organization."""

    @property
    def organization_id(self) -> str: ...


S = TypeVar("S", bound=Identified)  # a stored record
T = TypeVar("T", bound=Owned)  # a template

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PAGE_PARAMS = frozenset({"limit", "offset"})
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"  # "true" on an idempotent create's stored answer
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks, and the service that answers: what a resource's operations receive."""

    service: Service
    organization_id: str
    api_key: ApiKey
    idempotency: IdempotencyKey | None = None  # a create's Idempotency-Key, where it takes one
    actor: Actor | None = None  # who asks, as the audit trail names them
    doing: Doing | None = None  # what the request changes that the audit trail records

    @property
    def store(self) -> Store:
        return self.service.store

    async def record(self, tx: Transaction, resource_id: str | None) -> None:
        """Record what the request does to ``resource_id`` in the audit trail, in ``tx``, the
        transaction that makes the change (nothing when the request changes nothing audited)."""
        if self.doing is not None:
            await self.doing.record(tx, resource_id)

    def auditing(self, audited: Audited | None, operation: Operation) -> Caller:
        """The caller doing ``operation`` to a record of an ``audited`` resource."""
        if audited is None or self.actor is None:
            return self
        doing = Doing(self.actor, audited.action(operation), audited.resource_type)
        return dataclasses.replace(self, doing=doing)


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer with a body (an answer model, or a mapping of them): its status and extra
    headers."""

    body: Answer
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    replayed: bool = False  # an idempotent create's stored answer, given again


@dataclass(frozen=True, slots=True)
class Page:
    """A paged list's request: its bounds, its checked query and the path's parameters."""

    limit: int
    offset: int
    query: Mapping[str, str]  # names known to the list, each at most once
    path: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Listed(Generic[R]):
    """One page of a paged list, and how many records the whole list holds."""

    items: Sequence[R]
    total: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Listing(Generic[R]):
    """An unpaged list: every record of the caller's organization."""

    run: Callable[[Caller], Awaitable[Sequence[R]]]


@dataclass(frozen=True, kw_only=True, slots=True)
class Paged(Generic[R]):
    """A list paged by ``limit`` and ``offset``; ``params``: its filters' query parameters;
    ``check``: the query's checks (its model) before the bounds are read; ``cursor``: where a
    full page's last record gives the ``next_cursor``."""

    run: Callable[[Caller, Page], Awaitable[Listed[R]]]
    params: frozenset[str] = frozenset()
    check: Callable[[Mapping[str, str]], object] | None = None
    cursor: Callable[[R], str] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Create(Generic[P, C]):
    """``parse`` the JSON body (400/422 before anything is stored), ``run`` it, ``reply``.

    ``max_body``: bytes a body may take beyond ``[server] max_body_bytes``; ``idempotent``:
    the request may carry an ``Idempotency-Key`` (given to ``run`` as ``Caller.idempotency``).
    """

    parse: Callable[[Caller, object], P]
    run: Callable[[Caller, P], Awaitable[C]]
    reply: Callable[[P, C], Reply]
    path: str | None = None  # where it is posted, when not the list's path
    max_body: int = 0
    idempotent: bool = False

    async def answer(self, caller: Caller, body: object, key: str | None) -> Reply:
        """The answer to ``body`` (``key``: the request's ``Idempotency-Key``, if any)."""
        parsed = self.parse(caller, body)
        if self.idempotent:
            caller = _with_idempotency(caller, key, body)
        return self.reply(parsed, await self.run(caller, parsed))


class Creating(Protocol):
    """A create, whatever its body and result (``Create``): where it is posted, the bytes a
    body may take beyond the node's bound, its answer."""

    @property
    def path(self) -> str | None: ...

    @property
    def max_body(self) -> int: ...

    async def answer(self, caller: Caller, body: object, key: str | None) -> Reply: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Patch(Generic[R]):
    """``parse`` the JSON body onto the stored record (the updated record, not yet stored),
    ``run`` stores it."""

    parse: Callable[[Caller, R, object], R]
    run: Callable[[Caller, R], Awaitable[R]]


@dataclass(frozen=True, kw_only=True, slots=True)
class Delete(Generic[R, C]):
    """``run`` on the stored record; ``reply``: the answer's body (``None``: ``204``)."""

    run: Callable[[Caller, R], Awaitable[C]]
    reply: Callable[[C], Reply] | None = None

    async def answer(self, caller: Caller, record: R) -> Reply | None:
        """The answer to deleting ``record`` (None: ``204``)."""
        result = await self.run(caller, record)
        return None if self.reply is None else self.reply(result)


class Deleting(Protocol[R_in]):
    """A delete of a record, whatever it gives back (``Delete``)."""

    async def answer(self, caller: Caller, record: R_in) -> Reply | None: ...


@dataclass(frozen=True, slots=True)
class Refused:
    """An operation no key may do on this resource: ``error`` is the answer (after the 404 of
    an id that is not the organization's)."""

    error: Callable[[], ApiError]


def created(serialize: Callable[[C], msgspec.Struct]) -> Callable[[object, C], Reply]:
    """The usual create answer: ``201`` with the new record."""

    def reply(_parsed: object, record: C) -> Reply:
        return Reply(serialize(record), status=201)

    return reply


def stored(
    write: Callable[[Transaction, S], Awaitable[object]],
) -> Callable[[Caller, S], Awaitable[S]]:
    """An operation that writes the record in one transaction (with its audit event), and
    gives it back."""

    async def run(caller: Caller, record: S) -> S:
        async with caller.store.transaction() as tx:
            await write(tx, record)
            await caller.record(tx, record.id)
        return record

    return run


# A write that takes the API key asking (``by``: a versioned record's version names it).
KeyedWrite = Callable[["Transaction", S, str | None], Awaitable[object]]


def stored_by(write: KeyedWrite[S]) -> Callable[[Caller, S], Awaitable[S]]:
    """``stored``, the write given the caller's API key (the version it makes names it)."""

    async def run(caller: Caller, record: S) -> S:
        by = caller.api_key.id

        async def keyed(tx: Transaction, r: S) -> object:
            return await write(tx, r, by)

        return await stored(keyed)(caller, record)

    return run


def changed_only(
    lookup: Callable[[Caller, str], Awaitable[S | None]],
    unchanged: Callable[[S, S], bool] | None,
    write: Callable[[Caller, S], Awaitable[S]],
) -> Callable[[Caller, S], Awaitable[S]]:
    """``write`` a changed record; one whose settings are the stored one's (``unchanged``)
    is not written (no version changing nothing): the answer is the record as stored."""
    if unchanged is None:
        return write

    async def run(caller: Caller, record: S) -> S:
        current = await lookup(caller, record.id)
        if current is not None and unchanged(current, record):
            return current
        return await write(caller, record)

    return run


def capped(
    count: Callable[[Caller], Awaitable[int]],
    most: int,
    plural: str,
    store: Callable[[Caller, S], Awaitable[S]],
) -> Callable[[Caller, S], Awaitable[S]]:
    """A create that stores the record (``store``: in one transaction), unless the
    organization already has ``most`` of them (``count``): then ``409``."""

    async def run(caller: Caller, record: S) -> S:
        if await count(caller) >= most:
            raise Conflict(f"at most {most} {plural}")
        return await store(caller, record)

    return run


def unreferenced(
    refers: Callable[[T, Mapping[str, JsonValue]], bool],
    what: Callable[[T], str],
    write: Callable[[Transaction, T], Awaitable[object]],
    remedy: str | None = None,
) -> Callable[[Caller, T], Awaitable[T]]:
    """A delete that writes in one transaction, unless an assistant of the record's
    organization references it (``refers``): then ``409`` "``what`` assistant(s): A, B[;
    ``remedy``]" (``calls/assistants/referencing.py``)."""
    store = stored(write)

    async def run(caller: Caller, record: T) -> T:
        await refuse_while_referenced(
            caller.store,
            record.organization_id,
            lambda config: refers(record, config),
            what(record),
            remedy,
        )
        return await store(caller, record)

    return run


TEMPLATES_PER_ORGANIZATION = 500  # of each kind (docs/analysis-templates.md)


def templates(
    *,
    path: str,
    noun: str,
    serialize: Callable[[T], msgspec.Struct],
    lookup: Callable[[Caller, str], Awaitable[T | None]],
    every: Callable[[Caller], Awaitable[Sequence[T]]],
    parse_new: Callable[[Caller, object], T],
    parse_update: Callable[[Caller, T, object], T],
    insert: KeyedWrite[T],
    update: KeyedWrite[T],
    delete: Callable[[Transaction, T], Awaitable[object]],
    used_by: Callable[[T, Mapping[str, JsonValue]], bool],
    in_use: str,
    remedy: str,
    audit: Audited,
    unchanged: Callable[[T, T], bool] | None = None,
) -> Resource[T]:
    """An organization's templates (tools, analysis plans) found by id: listed whole, created
    while it has fewer than ``TEMPLATES_PER_ORGANIZATION`` of the kind (then ``409``),
    replaced by a PATCH (not stored when ``unchanged``), deleted unless an assistant's
    configuration still uses it (``used_by``): then ``409`` "``in_use`` assistant(s): A, B;
    ``remedy``". ``insert`` and ``update`` are given the caller's API key."""

    async def count(caller: Caller) -> int:
        return len(await every(caller))

    return Resource(
        path=path,
        noun=noun,
        lookup=lookup,
        serialize=serialize,
        list=Listing(run=every),
        create=Create(
            parse=parse_new,
            run=capped(count, TEMPLATES_PER_ORGANIZATION, f"{noun}s", stored_by(insert)),
            reply=created(serialize),
        ),
        patch=Patch(parse=parse_update, run=changed_only(lookup, unchanged, stored_by(update))),
        delete=Delete(run=unreferenced(used_by, lambda _template: in_use, delete, remedy)),
        audit=audit,
    )


def oldest_first(
    *,
    path: str,
    noun: str,
    serialize: Callable[[T], msgspec.Struct],
    lookup: Callable[[Caller, str], Awaitable[T | None]],
    page: Callable[[Caller, OldestFirstQuery], Awaitable[RecordPage[T]]],
    query: type[OldestFirstPageQuery],
    parse_new: Callable[[Caller, object], T],
    parse_update: Callable[[Caller, T, object], T],
    insert: KeyedWrite[T],
    update: KeyedWrite[T],
    delete: Callable[[Transaction, T], Awaitable[object]],
    most: int,
    check: Callable[[Caller, T], Awaitable[None]] | None = None,
    refuse_delete: Callable[[Caller, T], Awaitable[None]] | None = None,
    unchanged: Callable[[T, T], bool] | None = None,
    audit: Audited | None = None,
) -> Resource[T]:
    """An organization's records found by id, listed oldest first a page at a time (``query``:
    the list's query model; a full page's ``next_cursor``: its last record's id), created
    while it has fewer than ``most`` (then ``409``), patched, deleted. ``check``: what a
    record created or patched must pass before anything else (a refusal is its answer);
    ``refuse_delete``: the same for a record deleted (a ``409`` while something uses it);
    ``unchanged``: a PATCH that changes nothing is not stored; ``insert`` and ``update`` are
    given the caller's API key."""

    async def count(caller: Caller) -> int:
        return (await page(caller, OldestFirstQuery(caller.organization_id, limit=1))).total

    return Resource(
        path=path,
        noun=noun,
        lookup=lookup,
        serialize=serialize,
        list=listed_oldest_first(page, query),
        create=Create(
            parse=parse_new,
            run=_refused_first(check, capped(count, most, f"{noun}s", stored_by(insert))),
            reply=created(serialize),
        ),
        patch=Patch(
            parse=parse_update,
            run=changed_only(lookup, unchanged, _refused_first(check, stored_by(update))),
        ),
        delete=Delete(run=_refused_first(refuse_delete, stored(delete))),
        audit=audit,
    )


def listed_oldest_first(
    page: Callable[[Caller, OldestFirstQuery], Awaitable[RecordPage[S]]],
    query: type[OldestFirstPageQuery],
) -> Paged[S]:
    """A list of an organization's records oldest first a page at a time, by ``page`` of the
    store; ``query``: the list's query model; a full page's ``next_cursor``: its last record's
    id."""

    async def listed(caller: Caller, asked: Page) -> Listed[S]:
        cursor = parse_query(asked.query, query).cursor
        after = None if isinstance(cursor, UnsetType) else cursor or None
        bounds = OldestFirstQuery(caller.organization_id, asked.limit, asked.offset, after=after)
        found = await page(caller, bounds)
        return Listed(found.records, found.total)

    return Paged(run=listed, params=frozenset({"cursor"}), cursor=lambda record: record.id)


def _refused_first(
    refuse: Callable[[Caller, T], Awaitable[None]] | None,
    write: Callable[[Caller, T], Awaitable[T]],
) -> Callable[[Caller, T], Awaitable[T]]:
    """``write``, once ``refuse`` (where there is one) let the record through: a refusal is
    the answer."""
    if refuse is None:
        return write

    async def run(caller: Caller, record: T) -> T:
        await refuse(caller, record)
        return await write(caller, record)

    return run


def not_found_title(noun: str) -> str:
    """A resource's 404 title by default: "Phone number not found"."""
    return f"{noun[:1].upper()}{noun[1:]} not found"


def accept_any(_value: str) -> bool:
    return True


@dataclass(frozen=True, kw_only=True)
class Resource(Generic[R]):
    """One REST resource: its paths, how its records are found and shown, its operations."""

    path: str  # the list's path; an item is at ``{path}/{<id_name>}``
    noun: str  # names the resource in messages: "no <noun> with this <id_name>"
    serialize: Callable[[R], object]  # a record's answer model (`.of`); only in lists: any JSON
    plural: str = ""  # the list's key in the answer; by default the path's last word
    title: str = ""  # the 404's error title; by default "<Noun> not found"
    lookup: Callable[[Caller, str], Awaitable[R | None]] | None = None  # within the org
    id_name: str = "id"
    id_pattern: str = ""  # a regex narrowing the item path's id (aiohttp's ``{id:regex}``)
    is_id: Callable[[str], bool] = is_token
    scope: KeyScope | None = None  # the scope every request needs, beyond the read-only rule
    list: Listing[R] | Paged[R] | None = None
    get: bool = True
    detail: Callable[[Caller, R], Awaitable[Answer]] | None = None  # GET item, when not serialize
    create: Creating | Refused | None = None
    patch: Patch[R] | Refused | None = None
    delete: Deleting[R] | Refused | None = None
    successor: str = ""  # a deprecated alias's: the path that replaces it
    audit: Audited | None = None  # its creates, updates and deletes in the audit trail

    def __post_init__(self) -> None:
        if not self.plural:
            object.__setattr__(self, "plural", self.path.rsplit("/", 1)[-1].replace("-", "_"))
        if not self.title:
            object.__setattr__(self, "title", not_found_title(self.noun))

    # -- finding records ---------------------------------------------------------------------

    def not_found(self) -> NotFound:
        return NotFound(f"no {self.noun} with this {self.id_name}", error=self.title)

    def path_id(self, request: web.Request) -> str:
        """The id in the path; one that cannot be an id is the 404."""
        value = request.match_info[self.id_name]
        if not self.is_id(value):
            raise self.not_found()
        return value

    async def find(self, caller: Caller, value: str) -> R:
        """The caller's organization's record with this id (404 when it has none)."""
        if self.lookup is None or not self.is_id(value):
            raise self.not_found()
        found = await self.lookup(caller, value)
        if found is None:
            raise self.not_found()
        return found

    async def fetch(self, request: web.Request) -> R:
        """The record the request's path names (404 when the organization has none)."""
        return await self.find(caller_of(request), request.match_info[self.id_name])

    @property
    def item_path(self) -> str:
        pattern = f":{self.id_pattern}" if self.id_pattern else ""
        return f"{self.path}/{{{self.id_name}{pattern}}}"

    def scope_refusal(self) -> str:
        assert self.scope is not None
        article = "an" if self.scope.value[0] in "aeiou" else "a"
        return f"managing {self.noun}s needs {article} {self.scope.value} API key"

    def one(self, record: R) -> msgspec.Struct:
        """One record's answer model."""
        answer = self.serialize(record)
        assert isinstance(answer, msgspec.Struct), "one record answers with its model"
        return answer

    def alias(self, path: str) -> Resource[R]:
        """This resource at ``path`` too, as a deprecated alias: the same operations and bodies
        (the list's key and the 404's title included), each answer flagged as deprecated."""
        create = self.create
        assert create is None or isinstance(create, Refused) or not create.path, "at the list"
        return dataclasses.replace(self, path=path, successor=self.path)

    # -- the handlers --------------------------------------------------------------------------

    def mount(self, routes: web.RouteTableDef) -> None:
        """Add the resource's handlers to ``routes`` (each path's methods together)."""
        if self.list is not None:
            routes.route("GET", self.path)(self._flagged(self._list))
        if self.create is not None:
            posted = None if isinstance(self.create, Refused) else self.create.path
            routes.route("POST", posted or self.path)(self._flagged(self._create))
        if self.get:
            routes.route("GET", self.item_path)(self._flagged(self._get, item=True))
        if self.patch is not None:
            routes.route("PATCH", self.item_path)(self._flagged(self._patch, item=True))
        if self.delete is not None:
            routes.route("DELETE", self.item_path)(self._flagged(self._delete, item=True))

    def _flagged(self, handler: Handler, *, item: bool = False) -> Handler:
        """A deprecated alias's handler: its answers say so, and which path replaces it."""
        if not self.successor:
            return handler
        old, new = self.path, self.successor
        if item:
            old, new = self.item_path, dataclasses.replace(self, path=new).item_path
        headers = deprecation_headers(f"deprecated path: {old} -> {new}")

        async def flagged(request: web.Request) -> web.StreamResponse:
            response = await handler(request)
            response.headers.update(headers)
            return response

        return flagged

    async def _list(self, request: web.Request) -> web.Response:
        listing = self.list
        caller = caller_of(request)
        if isinstance(listing, Listing):
            items = await listing.run(caller)
            return encode({self.plural: [self.serialize(r) for r in items]})
        assert listing is not None
        page = read_page(request, listing.params, listing.check)
        listed = await listing.run(caller, page)
        body: dict[str, object] = {
            self.plural: [self.serialize(r) for r in listed.items],
            "pagination": {"total": listed.total, "limit": page.limit, "offset": page.offset},
        }
        if listing.cursor is not None:
            full = len(listed.items) == page.limit and listed.items
            body["next_cursor"] = listing.cursor(listed.items[-1]) if full else None
        return encode(body)

    async def _get(self, request: web.Request) -> web.Response:
        caller = caller_of(request)
        record = await self.find(caller, request.match_info[self.id_name])
        if self.detail is not None:
            return encode(await self.detail(caller, record))
        return encode(self.one(record))

    async def _create(self, request: web.Request) -> web.Response:
        create = self.create
        if isinstance(create, Refused):
            raise create.error()
        assert create is not None
        caller = caller_of(request).auditing(self.audit, "created")
        body = await read_json(request, _max_body(caller, create.max_body))
        return respond(await create.answer(caller, body, request.headers.get(IDEMPOTENCY_HEADER)))

    async def _patch(self, request: web.Request) -> web.Response:
        caller, record, patch = await self._operand(request, self.patch)
        caller = caller.auditing(self.audit, "updated")
        body = await read_json(request, _max_body(caller, 0))
        updated = await patch.run(caller, patch.parse(caller, record, body))
        return encode(self.one(updated))

    async def _delete(self, request: web.Request) -> web.Response:
        caller, record, delete = await self._operand(request, self.delete)
        caller = caller.auditing(self.audit, "deleted")
        answer = await delete.answer(caller, record)
        return web.Response(status=204) if answer is None else respond(answer)

    async def _operand(
        self, request: web.Request, operation: Op | Refused | None
    ) -> tuple[Caller, R, Op]:
        """The caller, the record the path names (404 first), and the operation on it (a
        refused one answers its error)."""
        caller = caller_of(request)
        record = await self.find(caller, request.match_info[self.id_name])
        if isinstance(operation, Refused):
            raise operation.error()
        assert operation is not None  # only mounted when declared
        return caller, record, operation


def deprecation_headers(note: str) -> dict[str, str]:
    """What an answer to a deprecated request carries: ``Deprecation: true``, the ``note`` (what
    was deprecated, and its replacement) as a ``Warning: 299``, and a ``Link`` to the document
    that marks it."""
    return {
        "Deprecation": "true",
        "Warning": f'299 - "{note}"',
        "Link": '</openapi.json>; rel="deprecation"; type="application/json"',
    }


def caller_of(request: web.Request) -> Caller:
    key = request[API_KEY]
    return Caller(request.app[SERVICE], organization_of(request), key, actor=Actor.of(request))


def respond(reply: Reply) -> web.Response:
    response = encode(reply.body, status=reply.status)
    if reply.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    response.headers.update(reply.headers)
    return response


def read_page(
    request: web.Request,
    params: frozenset[str] = frozenset(),
    check: Callable[[Mapping[str, str]], object] | None = None,
) -> Page:
    """A paged list's bounds: 400 for an unknown or repeated query parameter, a query ``check``
    refuses, or a ``limit`` or ``offset`` out of bounds."""
    q = request.query
    check_query_names(q, PAGE_PARAMS | params)
    if check is not None:
        check(q)
    return Page(
        limit=query_int(q.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=query_int(q.get("offset"), "offset", 0, 0, MAX_OFFSET),
        query=q,
        path=request.match_info,
    )


def _max_body(caller: Caller, allowance: int) -> int:
    return max(caller.service.settings.server.max_body_bytes, allowance)


def _with_idempotency(caller: Caller, key: str | None, body: object) -> Caller:
    """The caller with the request's ``Idempotency-Key`` (bound to the body's hash)."""
    if key is None:
        return caller
    if _IDEMPOTENCY_KEY.fullmatch(key) is None:
        raise BadRequest(f"{IDEMPOTENCY_HEADER} must be 1-255 printable ASCII characters")
    digest = hashlib.sha256(canonical_hash_input(body)).hexdigest()
    return dataclasses.replace(caller, idempotency=IdempotencyKey(key, digest))


class Mounted(Protocol):
    """A resource, whatever its records (``Resource``): its handlers and the key scope its
    paths need."""

    @property
    def path(self) -> str: ...

    @property
    def scope(self) -> KeyScope | None: ...

    def scope_refusal(self) -> str: ...

    def mount(self, routes: web.RouteTableDef) -> None: ...


def mount(routes: web.RouteTableDef, *resources: Mounted) -> None:
    for resource in resources:
        resource.mount(routes)


def scoped_paths(resources: Iterable[Mounted]) -> dict[str, tuple[KeyScope, str]]:
    """The paths (with every path below them) that need a key scope, and the refusal."""
    return {r.path: (r.scope, r.scope_refusal()) for r in resources if r.scope is not None}
