"""``GET /calls/{id}/listen``: a live call's two sides as audio, over a websocket."""

from __future__ import annotations

from voicedock.api.models.operations import Schema, error_response, operation, too_many


def _listen_op() -> Schema:
    op = operation(
        "Listen to a live call (websocket)",
        ("101", None),
        errors="400 401 403 404 409",
        description=(
            "Upgrade to a websocket: a text message {type: hello, encoding, sample_rate, "
            "channels, header_bytes, frame_ms, ...}, then one binary message per 20 ms frame "
            "of either side (u8 channel 0 caller / 1 assistant, u8 flags, u16 sequence, u32 "
            "time in ms, little-endian, then 16-bit PCM), then {type: end, reason, "
            "dropped_frames}. docs/live-listen.md."
        ),
    )
    op["responses"]["403"] = error_response(
        "403",
        "The key does not hold the listen grant (a read-only key the operator did not "
        "grant it, a key it was withdrawn from), or a console session from another origin",
    )
    op["responses"]["101"] = {"description": "Switching protocols: the listen stream follows"}
    op["responses"]["409"] = error_response(
        "409",
        "The call is not in progress, its audio has not started yet (error 'Call not "
        "active'), or another node serves it (error 'Call on another node', that node's "
        "id in node)",
    )
    op["responses"]["429"] = too_many(
        "Too many listeners (error 'Too many listeners'): the call's, the "
        "organization's or the node's cap ([listen] max_listeners_per_call, "
        "max_listeners_per_organization, max_listeners) is reached; retry after "
        "Retry-After seconds"
    )
    return op


PATHS: dict[str, Schema] = {"/calls/{id}/listen": {"get": _listen_op()}}
MODELS = ()
