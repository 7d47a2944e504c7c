"""Recording the audit trail (``domain/audit.py``): who did what, from the request that did it.

A change is recorded in the transaction that makes it, so the trail has an event exactly when
the change committed: the resource layer (``api/resources.py``) records a resource's create,
update and delete (``Audited``, each through ``Caller.record``), the console's sign-in records
itself beside its session. A read that hands data out (a recording downloaded, a usage export,
a live call heard) and a command sent to a live call (a whisper, a take over) are recorded
right after they were granted, in a transaction of their own (``record_now``).
"""

from __future__ import annotations

import getpass
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from aiohttp import web

from voicedock.api.app_keys import API_KEY, CONSOLE_SESSION, SERVICE
from voicedock.domain.audit import ActorKind, AuditEvent, mask_address
from voicedock.domain.records import ApiKey

if TYPE_CHECKING:
    from voicedock.store.base import Transaction

Operation = Literal["created", "updated", "deleted"]  # what the resource layer does to a record
SESSION_ID_CHARS = 16  # a console session's id in the trail: never the cookie nor its hash


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an organization's API key, through its Bearer header or a console session
    signed in with it, and from which address (masked)."""

    key_id: str
    organization_id: str
    kind: ActorKind = ActorKind.API_KEY
    address: str | None = None
    console_session: str | None = None

    @classmethod
    def of(
        cls, request: web.Request, key: ApiKey | None = None, session: str | None = None
    ) -> Actor:
        """The request's actor; signing in to the console, before the request holds either:
        ``key``, the key it signs in with, and ``session``, the new session's token hash."""
        key = request[API_KEY] if key is None else key
        session = request.get(CONSOLE_SESSION) if session is None else session
        return cls(
            key.id,
            key.organization_id,
            ActorKind.API_KEY if session is None else ActorKind.CONSOLE_SESSION,
            mask_address(request.remote),
            None if session is None else session_id(session),
        )

    @classmethod
    def operator(cls, organization_id: str) -> Actor:
        """The operator acting on ``organization_id`` at the node's command line: the local
        account that ran the command."""
        try:
            account = getpass.getuser()
        except (OSError, KeyError):  # no login name and no passwd entry (a bare container's uid)
            account = "operator"
        return cls(account, organization_id, ActorKind.OPERATOR)

    def event(
        self,
        action: str,
        resource_type: str,
        resource_id: str | None,
        detail: dict[str, str] | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            organization_id=self.organization_id,
            actor=self.key_id,
            actor_kind=self.kind,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            address=self.address,
            console_session=self.console_session,
            detail=detail,
        )


def session_id(token_hash: str) -> str:
    """A console session's id in the trail, from its stored token hash: the same session
    always has the same id, which finds neither the session nor its cookie."""
    return hashlib.sha256(token_hash.encode()).hexdigest()[:SESSION_ID_CHARS]


@dataclass(frozen=True, slots=True)
class Audited:
    """How a resource's changes appear in the trail: its type (``assistant``) and the word
    for each operation (``assistant.created``, ``api_key.revoked``)."""

    resource_type: str
    created: str = "created"
    updated: str = "updated"
    deleted: str = "deleted"

    def action(self, operation: Operation) -> str:
        words = {"created": self.created, "updated": self.updated, "deleted": self.deleted}
        return f"{self.resource_type}.{words[operation]}"


@dataclass(frozen=True, slots=True)
class Doing:
    """What one request does that the trail records: the actor, the action, its resource."""

    actor: Actor
    action: str
    resource_type: str

    async def record(self, tx: Transaction, resource_id: str | None) -> None:
        await tx.insert_audit_event(self.actor.event(self.action, self.resource_type, resource_id))


async def record_now(
    request: web.Request,
    action: str,
    resource_type: str,
    resource_id: str | None,
    detail: dict[str, str] | None = None,
) -> None:
    """Record what the request was just granted (a read, a command to a live call), in a
    transaction of its own."""
    event = Actor.of(request).event(action, resource_type, resource_id, detail)
    async with request.app[SERVICE].store.transaction() as tx:
        await tx.insert_audit_event(event)


__all__ = ["Actor", "Audited", "Doing", "Operation", "record_now", "session_id"]
