"""The OpenAPI description of ``/webhooks`` and of a call's live event stream."""

from __future__ import annotations

from voicedock.api.openapi_schema import ID, PATH_ID, TIME, Schema, nullable, obj, operation, ref
from voicedock.domain.webhooks import EventType

_EVENT_TYPE: Schema = {"enum": [t.value for t in EventType]}
_WEBHOOK_PROPS: dict[str, Schema] = {
    "id": {"type": "string"},
    "url": {"type": "string"},
    "assistant_id": {"type": ["string", "null"]},
    "event_types": {"type": "array", "items": _EVENT_TYPE},
    "enabled": {"type": "boolean"},
    "created_at": TIME,
}

WEBHOOK_SCHEMAS: dict[str, Schema] = {
    "Webhook": obj(_WEBHOOK_PROPS, tuple(_WEBHOOK_PROPS), strict=False),
    "WebhookCreated": obj(
        {
            **_WEBHOOK_PROPS,
            "secret": {
                "type": "string",
                "description": "whsec_...: shown only in this response; verifies signatures",
            },
        },
        (*_WEBHOOK_PROPS, "secret"),
        strict=False,
    ),
    "WebhookCreate": obj(
        {
            "url": {"type": "string", "format": "uri", "minLength": 1, "maxLength": 2000},
            "assistant_id": nullable(ID),
            "event_types": {"type": "array", "items": _EVENT_TYPE, "uniqueItems": True},
        },
        ("url",),
    ),
    "WebhookList": obj(
        {"webhooks": {"type": "array", "items": ref("Webhook")}}, ("webhooks",), strict=False
    ),
}


def _call_events_op() -> Schema:
    op = operation("Live events of a call (Server-Sent Events)", ("200", None), errors="401 404")
    op["parameters"] = [
        PATH_ID,
        {
            "name": "Last-Event-ID",
            "in": "header",
            "schema": {"type": "string"},
            "description": "Resume after this event (the SSE id: the event's seq).",
        },
    ]
    op["responses"]["200"] = {
        "description": "An event stream that ends after the call's terminal status",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
    op["responses"]["204"] = {"description": "The call has ended and nothing is left to send"}
    op["responses"]["429"] = {
        "description": (
            "Too many open event streams (error 'Too many streams'): this API key's or "
            "organization's cap ([limits] open_streams_per_key, open_streams_per_organization) "
            "or the node's is reached; retry after Retry-After seconds"
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/json": {"schema": ref("Error")}},
    }
    return op


WEBHOOK_PATHS: dict[str, Schema] = {
    "/calls/{id}/events": {"get": _call_events_op()},
    "/webhooks": {
        "get": operation("List webhook endpoints", ("200", "WebhookList"), errors="401"),
        "post": operation(
            "Create a webhook endpoint (the secret is returned once)",
            ("201", "WebhookCreated"),
            body="WebhookCreate",
            errors="400 401 409 413 422",
        ),
    },
    "/webhooks/{id}": {
        "get": operation(
            "Get a webhook endpoint", ("200", "Webhook"), params=[PATH_ID], errors="401 404"
        ),
        "delete": operation(
            "Delete a webhook endpoint", ("204", None), params=[PATH_ID], errors="401 404"
        ),
    },
}
