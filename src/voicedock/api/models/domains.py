"""``/domains``: the host names an organization holds (its branded console and API host, its
SIP domain). The operator assigns them; an organization proposes one only where the operator
allows it, pending until its DNS TXT record is verified (docs/domains.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.base import Body, Reply, of_record
from voicedock.api.models.calls import OldestFirstPageQuery, Pagination
from voicedock.api.models.field_types import Time
from voicedock.api.models.operations import Schema, operation, query_operation
from voicedock.domain.domains import MAX_HOST_CHARS, DomainKind, DomainStatus, verification_name
from voicedock.domain.domains import Domain as DomainRecord

Host = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_HOST_CHARS,
        description="A fully qualified domain name; an internationalized one is kept in its "
        "IDNA (xn--) form, every name in lower case.",
    ),
]


class DomainCreate(Body, kw_only=True):
    """A domain the organization proposes (where the operator allows it): ``pending`` until
    ``POST /domains/{id}/verify`` finds its TXT record."""

    host: Host
    kind: DomainKind | UnsetType = UNSET


class VerificationRecord(Reply, kw_only=True):
    """The DNS record that proves the organization controls the host: a TXT record at
    ``name`` whose text is ``value``."""

    type: Literal["TXT"] = "TXT"
    name: str
    value: str


class Domain(Reply, kw_only=True):
    id: str
    host: str
    kind: DomainKind
    status: DomainStatus
    verification: VerificationRecord
    created_at: Time
    verified_at: Time = None

    @classmethod
    def of(cls, domain: DomainRecord) -> Domain:
        record = VerificationRecord(
            name=verification_name(domain.host), value=domain.verification_token
        )
        return of_record(cls, domain, verification=record)


class DomainList(Reply, kw_only=True):
    domains: list[Domain]
    pagination: Pagination
    next_cursor: str | None = None


class DomainListQuery(OldestFirstPageQuery, kw_only=True):
    """``GET /domains``'s query: oldest first."""


PATHS: dict[str, Schema] = {
    "/domains": {
        "get": query_operation("List the organization's domains", DomainList, DomainListQuery),
        "post": operation(
            "Propose a domain (where the operator allows it): pending until verified",
            ("201", Domain),
            body=DomainCreate,
            errors="400 401 403 409 413",
        ),
    },
    "/domains/{id}": {
        "get": operation("Get a domain", ("200", Domain), errors="401 404"),
        "delete": operation(
            "Withdraw a pending domain (the operator removes a verified one)",
            ("204", None),
            errors="401 403 404",
        ),
    },
    "/domains/{id}/verify": {
        "post": operation(
            "Verify a pending domain by its DNS TXT record",
            ("200", Domain),
            errors="401 403 404 409",
        ),
    },
}
MODELS = (DomainCreate, VerificationRecord, Domain, DomainList, DomainListQuery)
