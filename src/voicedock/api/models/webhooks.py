"""``/webhooks``: an organization's webhook endpoints (the signing secret shown once)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from voicedock.api.models.base import Body, Reply, of_record
from voicedock.api.models.field_types import Id, Time
from voicedock.api.models.operations import Schema, owned_paths
from voicedock.domain.secret_fields import masked_url
from voicedock.domain.webhooks import EventType, WebhookEndpoint

MAX_URL_LENGTH = 2000


class Webhook(Reply, kw_only=True):
    id: str
    url: str
    assistant_id: str | None
    event_types: list[EventType]
    enabled: bool
    created_at: Time

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> Webhook:
        return of_record(
            cls,
            endpoint,
            url=masked_url(endpoint.url),  # credentials stored before they were refused
            event_types=[EventType(t) for t in endpoint.event_types],
        )


class WebhookCreated(Webhook, kw_only=True):
    secret: Annotated[
        str, Meta(description="whsec_...: shown only in this response; verifies signatures")
    ]

    @classmethod
    def of_new(cls, endpoint: WebhookEndpoint) -> WebhookCreated:
        return cls(**msgspec.structs.asdict(Webhook.of(endpoint)), secret=endpoint.secret)


class WebhookCreate(Body, kw_only=True):
    url: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_URL_LENGTH,
            description="A URL the operator's egress policy refuses (a scheme it does not "
            "take, loopback, private, link-local, the PBX, credentials in it, a host that does "
            "not resolve, ...) is a 400 Webhook URL refused.",
            extra_json_schema={"format": "uri"},
        ),
    ]
    assistant_id: (
        Annotated[
            Id,
            Meta(
                description="Only this assistant's calls; one of the organization's "
                "assistants, else 422 Unknown assistant."
            ),
        ]
        | None
    ) = None
    event_types: Annotated[list[EventType], Meta(extra_json_schema={"uniqueItems": True})] = (
        msgspec.field(default_factory=list)
    )

    def event_type_values(self) -> list[str]:
        """The types asked for, each once, in the documented order (none: every type)."""
        order = list(EventType)
        return [t.value for t in sorted(set(self.event_types), key=order.index)]


class WebhookList(Reply, kw_only=True):
    webhooks: list[Webhook]


PATHS: dict[str, Schema] = owned_paths(
    "/webhooks",
    a_record="a webhook endpoint",
    reply=Webhook,
    listing=WebhookList,
    create=("Create a webhook endpoint (the secret is returned once)", WebhookCreate),
    created=WebhookCreated,
    update=None,
    names_records=True,
)
MODELS = (Webhook, WebhookCreated, WebhookCreate, WebhookList)
