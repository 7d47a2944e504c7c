"""The OpenAPI description of ``/voices``: the voices this node speaks, and a voice's preview."""

from __future__ import annotations

from voicedock.api.openapi_schema import PATH_ID, Schema, obj, operation, ref
from voicedock.calls.voices import PREVIEW_RETRY_AFTER_S, PREVIEW_TEXT_MAX
from voicedock.domain.provider_keys import text

_VOICE_ID: Schema = {
    "type": "string",
    "description": "<provider>:<voice>, as GET /voices lists it (e.g. piper:en_US-joe-medium)",
}


def _preview() -> Schema:
    op = operation(
        "Speak a short text in a voice (a WAV at the voice's sample rate)",
        ("200", None),
        body="VoicePreviewRequest",
        params=[{**PATH_ID, "schema": _VOICE_ID}],
        errors="400 401 404 413 415",
    )
    op["responses"]["200"]["content"] = {
        "audio/wav": {"schema": {"type": "string", "format": "binary"}}
    }
    op["responses"]["503"] = {
        "description": "The voice's engine could not speak it now (a cloud provider's error), "
        f"or the database for now; retry after Retry-After seconds ({PREVIEW_RETRY_AFTER_S})",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/json": {"schema": ref("Error")}},
    }
    return op


VOICE_SCHEMAS: dict[str, Schema] = {
    "Voice": obj(
        {
            "id": _VOICE_ID,
            "provider": {"type": "string", "description": "tts_config.provider"},
            "voice": {"type": "string", "description": "tts_config.voice"},
            "name": {"type": "string"},
            "language": {"type": "string", "description": "BCP 47; mul: many languages"},
            "sample_rate": {"type": "integer", "minimum": 1},
            "cloud": {"type": "boolean"},
            "tts_config": obj(
                {"provider": {"type": "string"}, "voice": {"type": "string"}},
                ("provider", "voice"),
                strict=False,
            ),
        },
        ("id", "provider", "voice", "name", "language", "sample_rate", "cloud", "tts_config"),
        strict=False,
    ),
    "VoiceList": obj(
        {"voices": {"type": "array", "items": ref("Voice")}}, ("voices",), strict=False
    ),
    "VoicePreviewRequest": obj({"text": text(PREVIEW_TEXT_MAX).schema}, ("text",)),
}

VOICE_PATHS: dict[str, Schema] = {
    "/voices": {
        "get": operation(
            "List the voices this node speaks (offline engines installed, cloud ones the "
            "operator configured)",
            ("200", "VoiceList"),
            errors="401",
        ),
    },
    "/voices/{id}/preview": {"post": _preview()},
}
