"""``/voices``: the voices this node speaks, and a voice's preview (a WAV of a short text)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from voicedock.api.models.base import Body, Reply, of_record
from voicedock.api.models.field_types import text
from voicedock.api.models.operations import PATH_ID, Schema, error_response, operation
from voicedock.calls.organization_voices import (
    PREVIEW_RETRY_AFTER_S,
    PREVIEW_TEXT_MAX,
    PREVIEW_TIMEOUT_S,
)
from voicedock.calls.organization_voices import Voice as VoiceRecord
from voicedock.domain.tenant_provider_fields import KEY_NAME_MAX, KEY_NAME_PATTERN

_VOICE_ID = "<provider>:<voice>, as GET /voices lists it (e.g. piper:en_US-joe-medium)"
VoiceId = Annotated[str, Meta(description=_VOICE_ID)]


class VoiceTtsConfig(Reply, kw_only=True):
    """The ``tts_config`` that selects this voice."""

    provider: str
    voice: str


class Voice(Reply, kw_only=True):
    id: VoiceId
    provider: Annotated[str, Meta(description="tts_config.provider")]
    voice: Annotated[str, Meta(description="tts_config.voice")]
    name: str
    language: Annotated[str, Meta(description="BCP 47; mul: many languages")]
    sample_rate: Annotated[int, Meta(ge=1)]
    cloud: bool
    tts_config: VoiceTtsConfig

    @classmethod
    def of(cls, v: VoiceRecord) -> Voice:
        return of_record(cls, v, tts_config=VoiceTtsConfig(provider=v.provider, voice=v.voice))


class VoiceList(Reply, kw_only=True):
    voices: list[Voice]


class VoicePreviewRequest(Body, kw_only=True):
    text: Annotated[str, text(PREVIEW_TEXT_MAX)]
    api_key_ref: (
        Annotated[
            str,
            Meta(
                pattern=KEY_NAME_PATTERN,
                max_length=KEY_NAME_MAX,
                description="A cloud voice: the name of one of the organization's provider "
                "keys (/provider-keys) to speak it with, as an assistant's tts_config names one; "
                "required where the operator requires organizations' own keys "
                '([byok] mode = "required")',
            ),
        ]
        | None
    ) = None


_PREVIEW_ERRORS = {
    "403": "Forbidden: a read-only API key (a preview spends the node's CPU), or an api_key_ref "
    'where the operator does not allow provider keys ([byok] mode = "off")',
    "400": "A body that breaks the schema; or Provider key required: a cloud voice without "
    "api_key_ref where the operator requires organizations' own keys",
    "422": "api_key_ref names no provider key of the organization, or one for another provider",
    "429": "Too many previews (error 'Too many previews'): the organization's or the node's "
    "voice previews under way ([limits] previews_per_organization, previews_per_node), or the "
    "API rate limit ([rate_limits]); retry after Retry-After seconds",
}


def _preview() -> Schema:
    op = operation(
        "Speak a short text in a voice (a WAV at the voice's sample rate)",
        ("200", None),
        body=VoicePreviewRequest,
        params=[{**PATH_ID, "schema": {"type": "string", "description": _VOICE_ID}}],
        errors="400 401 403 404 413 415 422",
    )
    for status, description in _PREVIEW_ERRORS.items():
        op["responses"][status] = error_response(status, description)
    op["responses"]["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    op["responses"]["200"]["content"] = {
        "audio/wav": {"schema": {"type": "string", "format": "binary"}}
    }
    op["responses"]["503"] = error_response(
        "503",
        "The voice's engine could not speak it now (a cloud provider's error, or the node's "
        f"calls left no time to speak it within {PREVIEW_TIMEOUT_S:g} s), or the database for "
        f"now; retry after Retry-After seconds ({PREVIEW_RETRY_AFTER_S})",
    )
    op["responses"]["503"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return op


PATHS: dict[str, Schema] = {
    "/voices": {
        "get": operation(
            "List the voices this organization may speak with on this node (offline engines "
            "installed, cloud ones the operator configured that the organization may use)",
            ("200", VoiceList),
            errors="401",
        ),
    },
    "/voices/{id}/preview": {"post": _preview()},
}
MODELS = (Voice, VoiceList, VoicePreviewRequest)
