"""``/voices``: the voices this node speaks (``GET``), and one voice's preview (``POST``)."""

from __future__ import annotations

from aiohttp import web

from voicedock.api.body import read_json
from voicedock.api.keys import SERVICE
from voicedock.api.middleware import organization_of
from voicedock.api.models.base import parse, reply
from voicedock.api.models.voices import Voice, VoiceList, VoicePreviewRequest
from voicedock.calls.voices import find_voice, list_voices, preview

routes = web.RouteTableDef()


@routes.get("/voices")
async def get_voices(request: web.Request) -> web.Response:
    voices = await list_voices(request.app[SERVICE].settings)
    return reply(VoiceList(voices=[Voice.of(v) for v in voices]))


@routes.post("/voices/{id}/preview")
async def preview_voice(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    body = parse(
        await read_json(request, service.settings.server.max_body_bytes), VoicePreviewRequest
    )
    voice = await find_voice(service.settings, request.match_info["id"])
    audio = await preview(
        voice,
        body.text,
        settings=service.settings,
        organization=organization_of(request),
        synthesis=service.runner.synthesis,
    )
    return web.Response(body=audio, content_type="audio/wav")
