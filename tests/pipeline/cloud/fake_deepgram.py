"""A loopback Deepgram live endpoint: checks the token, answers audio with Results
messages shaped like the API's, honours KeepAlive and CloseStream."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


def results_message(text: str, *, is_final: bool, speech_final: bool = False) -> str:
    return json.dumps(
        {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": 1.04,
            "start": 0.0,
            "is_final": is_final,
            "speech_final": speech_final,
            "channel": {
                "alternatives": [
                    {
                        "transcript": text,
                        "confidence": 0.98,
                        "words": [],
                    }
                ]
            },
            "metadata": {
                "request_id": "2479c8c8-8185-40ac-9ac6-f0874419f793",
                "model_info": {"name": "2-general-nova", "version": "2024-01-18", "arch": "nova-3"},
                "model_uuid": "c0d1a568-ce81-4fea-97e7-bd45cb1fdf3c",
            },
            "from_finalize": False,
        }
    )


METADATA_MESSAGE = json.dumps(
    {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": "2479c8c8-8185-40ac-9ac6-f0874419f793",
        "sha256": "5324da68ede209a16ac69a38e8cd29cee4d754434a041166cda3a1f5e0b24566",
        "created": "2024-08-29T22:37:55.202Z",
        "duration": 1.5,
        "channels": 1,
    }
)


@dataclass
class DeepgramScript:
    token: str
    reject_status: int | None = None
    reject_headers: dict[str, str] = field(default_factory=dict)
    interim: str = "book a"
    final: str = "Book a table."
    drop_after_audio: bool = False
    close_code_after_audio: int | None = None
    ignore_close_stream: bool = False
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    audio_bytes: int = 0
    texts: list[dict[str, Any]] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


def deepgram_handler(script: DeepgramScript) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        script.query = dict(request.query)
        script.headers = dict(request.headers)
        if request.headers.get("Authorization") != f"Token {script.token}":
            return web.json_response({"err_code": "INVALID_AUTH"}, status=401)
        if script.reject_status is not None:
            return web.json_response(
                {"err_msg": "rejected"}, status=script.reject_status, headers=script.reject_headers
            )
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    first = script.audio_bytes == 0
                    script.audio_bytes += len(msg.data)
                    if first and script.drop_after_audio:
                        assert request.transport is not None
                        request.transport.close()
                        break
                    if first and script.close_code_after_audio is not None:
                        await ws.close(code=script.close_code_after_audio, message=b"DATA-0000")
                        break
                    if first:
                        await ws.send_str(results_message(script.interim, is_final=False))
                elif msg.type == WSMsgType.TEXT:
                    doc = json.loads(msg.data)
                    script.texts.append(doc)
                    if doc.get("type") == "CloseStream" and not script.ignore_close_stream:
                        await ws.send_str(
                            results_message(script.final, is_final=True, speech_final=True)
                        )
                        await ws.send_str(METADATA_MESSAGE)
                        await ws.close()
                        break
        finally:
            script.disconnected.set()
        return ws

    return handler
