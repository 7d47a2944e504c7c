"""``/voices``: the voices the organization may speak with (``GET``), and one voice's preview
(``POST``)."""

from __future__ import annotations

from aiohttp import web

from voicedock.api.app_keys import SERVICE
from voicedock.api.authentication import organization_of
from voicedock.api.body import read_json
from voicedock.api.models.base import parse, reply
from voicedock.api.models.voices import Voice, VoiceList, VoicePreviewRequest

routes = web.RouteTableDef()


@routes.get("/voices")
async def get_voices(request: web.Request) -> web.Response:
    voices = await request.app[SERVICE].voices.listed(organization_of(request))
    return reply(VoiceList(voices=[Voice.of(v) for v in voices]))


@routes.post("/voices/{id}/preview")
async def preview_voice(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    body = parse(
        await read_json(request, service.settings.server.max_body_bytes), VoicePreviewRequest
    )
    audio = await service.voices.preview(
        organization_of(request), request.match_info["id"], body.text, body.api_key_ref
    )
    return web.Response(body=audio, content_type="audio/wav")
