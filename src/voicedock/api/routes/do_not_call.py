"""``/do-not-call``: the organization's own do-not-call entries, listed, added one at a time or
from a CSV (``/do-not-call/import``) and removed. Every outbound path checks them with the
operator's (``calls/compliance/do_not_call.py``; docs/compliance.md)."""

from __future__ import annotations

from aiohttp import web

from voicedock.api.app_keys import SERVICE
from voicedock.api.authentication import organization_of
from voicedock.api.body import read_body
from voicedock.api.models.base import parse, reply
from voicedock.api.models.do_not_call import (
    ENTRY_ERROR,
    Done,
    DoNotCallAdded,
    DoNotCallImported,
    DoNotCallNumber,
    DoNotCallRejectedRow,
)
from voicedock.api.resources import (
    Caller,
    Create,
    Delete,
    Listing,
    Reply,
    Resource,
    accept_any,
    mount,
)
from voicedock.calls.compliance.do_not_call import add_entries
from voicedock.domain.do_not_call import (
    CsvTooLarge,
    CsvUnreadable,
    EntryRefused,
    csv_entries,
    entry_of,
)
from voicedock.domain.records import utcnow
from voicedock.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType

routes = web.RouteTableDef()

NOT_ON_THE_LIST = "the number is not on the do-not-call list"
# One CSV import: at most this many bytes and rows (the list's own bound is the operator's).
MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 50_000


def parse_entry(_caller: Caller, body: object) -> str:
    try:
        return entry_of(parse(body, DoNotCallNumber).number)
    except EntryRefused as refused:
        raise BadRequest(f"number: {refused}", error=ENTRY_ERROR) from None


async def _delete(caller: Caller, entry: str) -> None:
    async with caller.store.transaction() as tx:
        if not await tx.delete_do_not_call(caller.organization_id, entry):
            raise NotFound(NOT_ON_THE_LIST)


async def _add(caller: Caller, entry: str) -> str:
    most = caller.service.settings.compliance.max_organization_entries
    await add_entries(caller.store, caller.organization_id, [entry], most, utcnow())
    return entry


async def _as_named(_caller: Caller, entry: str) -> str:
    return entry  # whether it is listed: the delete's own answer


@routes.post("/do-not-call/import")
async def import_entries(request: web.Request) -> web.Response:
    """Entries from a CSV body (``text/csv``): those added, the rows refused."""
    if request.content_type != "text/csv":
        raise UnsupportedMediaType("the body must be a CSV (Content-Type: text/csv)")
    if request.content_length is not None and request.content_length > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"a CSV of entries is at most {MAX_IMPORT_BYTES} bytes")
    raw = await read_body(request, MAX_IMPORT_BYTES)
    try:
        read = csv_entries(raw.decode("utf-8-sig"), MAX_IMPORT_ROWS)
    except UnicodeDecodeError:
        raise BadRequest("the CSV must be UTF-8", error=ENTRY_ERROR) from None
    except CsvTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except CsvUnreadable as exc:
        raise BadRequest(str(exc), error=ENTRY_ERROR) from None
    if read.rejected and not read.entries:  # not a list of numbers at all: the wrong file?
        raise BadRequest(
            f"no row of the CSV is a do-not-call entry (row {read.rejected[0].row}: "
            f"{read.rejected[0].message})",
            error=ENTRY_ERROR,
        )
    service = request.app[SERVICE]
    most = service.settings.compliance.max_organization_entries
    added = await add_entries(service.store, organization_of(request), read.entries, most, utcnow())
    rejected = [DoNotCallRejectedRow(row=r.row, message=r.message) for r in read.rejected]
    return reply(DoNotCallImported(success=True, added=added, rejected=rejected), 201)


# The organization's do-not-call list: numbers (E.164) and ranges, listed, added and removed.
DO_NOT_CALL: Resource[str] = Resource(
    path="/do-not-call",
    plural="numbers",
    noun="number",
    title=NotFound.error,
    id_name="number",
    id_pattern=r"\+[^/]*",  # an entry begins with "+": /do-not-call/import is not one
    is_id=accept_any,
    lookup=_as_named,
    get=False,
    serialize=str,
    list=Listing(run=lambda c: c.store.list_do_not_call(c.organization_id)),
    create=Create(
        parse=parse_entry,
        run=_add,
        reply=lambda _entry, entry: Reply(DoNotCallAdded(success=True, number=entry), status=201),
    ),
    delete=Delete(run=_delete, reply=lambda _none: Reply(Done(success=True))),
)
mount(routes, DO_NOT_CALL)
RESOURCES = (DO_NOT_CALL,)
