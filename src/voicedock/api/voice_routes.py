"""``/voices``: the voices this node speaks (``GET``), and one voice's preview (``POST``)."""

from __future__ import annotations

from aiohttp import web

from voicedock.api.body import read_json
from voicedock.api.keys import SERVICE
from voicedock.api.middleware import organization_of
from voicedock.calls.voices import PREVIEW_TEXT_MAX, find_voice, list_voices, preview, voice_json
from voicedock.domain.provider_keys import text
from voicedock.errors import BadRequest

routes = web.RouteTableDef()

_TEXT = text(PREVIEW_TEXT_MAX)


@routes.get("/voices")
async def get_voices(request: web.Request) -> web.Response:
    voices = await list_voices(request.app[SERVICE].settings)
    return web.json_response({"voices": [voice_json(v) for v in voices]})


@routes.post("/voices/{id}/preview")
async def preview_voice(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    body = await read_json(request, service.settings.server.max_body_bytes)
    if not isinstance(body, dict):
        raise BadRequest("the body must be an object")
    unknown = sorted(set(body) - {"text"})
    if unknown:
        raise BadRequest(f"{unknown[0]} is not a field of a voice preview")
    if "text" not in body:
        raise BadRequest("text is required")
    _TEXT(body["text"], "text")
    voice = await find_voice(service.settings, request.match_info["id"])
    audio = await preview(
        voice,
        body["text"],
        settings=service.settings,
        organization=organization_of(request),
        synthesis=service.runner.synthesis,
    )
    return web.Response(body=audio, content_type="audio/wav")
