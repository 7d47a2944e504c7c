"""``GET /calls/{id}/events``: a call's live events (Server-Sent Events)."""

from __future__ import annotations

from voicedock.api.models.operations import PATH_ID, Schema, operation, too_many


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
    op["responses"]["429"] = too_many(
        "Too many open event streams (error 'Too many streams'): this API key's or "
        "organization's cap ([limits] open_streams_per_key, open_streams_per_organization; "
        "every node's streams count) or the node's is reached; retry after Retry-After "
        "seconds"
    )
    return op


PATHS: dict[str, Schema] = {"/calls/{id}/events": {"get": _call_events_op()}}
MODELS = ()
