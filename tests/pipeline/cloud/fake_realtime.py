"""A loopback OpenAI-Realtime-style endpoint (as xAI serves it): records client events,
answers `response.create` with audio deltas, a transcript delta and `response.done`.

By default every appended audio chunk is "speech" (`speech_started`, a barge-in); with
`silence_is_quiet` digital silence (what a call's media hands over for a gap in the caller's
audio) is not, nor does it count below. With `turn_after_frames=N` the server VAD behaves like
a caller's turn instead: `speech_started` at the first chunk (or `turn_starts_at_frame`),
`speech_stopped` after the N-th (with `user_says`,
the turn's input transcription), then the reply the server creates itself (`turns`: as many
turns, one after the other); with
`silent_caller` it hears no speech at all. A session can break after some replies: dropped
(`drop_after_replies`) or with a `server_error` event (`server_error_after_replies`); or drop
once the caller's turn ended, before any reply (`drop_before_reply`) or midway through it
(`drop_mid_reply`)."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

REPLY_PCM = b"\x10\x00\x20\x00" * 100


@dataclass
class RealtimeScript:
    token: str
    reject_status: int | None = None
    drop_after_session_update: bool = False
    turn_after_frames: int | None = None  # server VAD turn: speech_stopped after N chunks
    turn_starts_at_frame: int = 1  # ... and speech_started at this chunk
    turns: int = 1  # the caller's turns the server VAD hears, each of turn_after_frames chunks
    silent_caller: bool = False  # the appended audio is never speech
    silence_is_quiet: bool = False  # digital silence is never speech (a real server VAD)
    reply_delay_s: float = 0.0  # between speech_stopped and the first audio delta
    # The model's answer to the turn is this function call instead (name, arguments); its
    # result (function_call_output + response.create) gets the usual reply.
    function_call: tuple[str, dict[str, Any]] | None = None
    # What the server VAD's turn was heard as (its input transcription, sent after the turn).
    user_says: str | None = None
    # After this many replies the session breaks: the connection dropped, or (server_error)
    # an error event of the provider's.
    drop_after_replies: int | None = None
    server_error_after_replies: int | None = None
    drop_before_reply: bool = False  # the session drops once the caller's turn ended
    drop_mid_reply: bool = False  # ... or midway through its reply ("We open", then nothing)
    query: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    replies: int = 0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


def _silent(event: dict[str, Any]) -> bool:
    """An ``input_audio_buffer.append`` of digital silence (PCM zeros)."""
    return not any(base64.b64decode(event["audio"]))


def server_event(kind: str, **fields: Any) -> str:
    return json.dumps({"event_id": "event_1", "type": kind, **fields})


async def _reply(ws: web.WebSocketResponse) -> None:
    await ws.send_str(server_event("response.created", response={"id": "r1"}))
    audio = base64.b64encode(REPLY_PCM).decode()
    half = len(audio) // 2 // 4 * 4
    for piece in (audio[:half], audio[half:]):
        await ws.send_str(
            server_event("response.output_audio.delta", response_id="r1", delta=piece)
        )
    await ws.send_str(
        server_event("response.output_audio_transcript.delta", response_id="r1", delta="Hi")
    )
    await ws.send_str(server_event("response.done", response={"status": "completed"}))


async def _half_reply(ws: web.WebSocketResponse) -> None:
    """The start of a reply: its first audio and words, no ``response.done``."""
    await ws.send_str(server_event("response.created", response={"id": "r1"}))
    audio = base64.b64encode(REPLY_PCM).decode()
    await ws.send_str(server_event("response.output_audio.delta", response_id="r1", delta=audio))
    await ws.send_str(
        server_event("response.output_audio_transcript.delta", response_id="r1", delta="We open")
    )


async def _call_function(ws: web.WebSocketResponse, name: str, arguments: dict[str, Any]) -> None:
    await ws.send_str(server_event("response.created", response={"id": "r2"}))
    await ws.send_str(
        server_event(
            "response.function_call_arguments.done",
            response_id="r2",
            call_id="fc_1",
            name=name,
            arguments=json.dumps(arguments),
        )
    )
    await ws.send_str(server_event("response.done", response={"status": "completed"}))


async def _replied(ws: web.WebSocketResponse, request: web.Request, script: RealtimeScript) -> bool:
    """A reply was sent: False when the session breaks after it, as scripted."""
    script.replies += 1
    if script.replies == script.server_error_after_replies:
        error = {"type": "server_error", "code": None, "message": "The server had an error"}
        await ws.send_str(server_event("error", error=error))
    if script.replies == script.drop_after_replies:
        assert request.transport is not None
        request.transport.close()
        return False
    return True


def realtime_handler(script: RealtimeScript) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        script.query = dict(request.query)
        script.connections += 1
        if request.headers.get("Authorization") != f"Bearer {script.token}":
            return web.json_response({"error": {"message": "Incorrect API key"}}, status=401)
        if script.reject_status is not None:
            return web.json_response(
                {"error": {"message": "limit"}},
                status=script.reject_status,
                headers={"Retry-After": "4"},
            )
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(server_event("conversation.created", conversation={"id": "conv_1"}))
        appended = 0
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                event = json.loads(msg.data)
                script.events.append(event)
                kind = event["type"]
                quiet = script.silence_is_quiet and kind == "input_audio_buffer.append"
                if quiet and _silent(event):
                    continue  # the server VAD hears no speech in digital silence
                if kind == "session.update" and script.drop_after_session_update:
                    assert request.transport is not None
                    request.transport.close()
                    break
                if kind == "session.update":
                    await ws.send_str(server_event("session.updated", session=event["session"]))
                elif kind == "input_audio_buffer.append" and script.turn_after_frames:
                    appended += 1
                    turn, at = divmod(appended - 1, script.turn_after_frames)
                    if turn >= script.turns:
                        continue
                    if at + 1 == script.turn_starts_at_frame:
                        await ws.send_str(
                            server_event("input_audio_buffer.speech_started", audio_start_ms=0)
                        )
                    elif at + 1 == script.turn_after_frames:
                        await ws.send_str(
                            server_event("input_audio_buffer.speech_stopped", audio_end_ms=500)
                        )
                        if script.user_says is not None:
                            await ws.send_str(
                                server_event(
                                    "conversation.item.input_audio_transcription.completed",
                                    transcript=script.user_says,
                                )
                            )
                        await asyncio.sleep(script.reply_delay_s)
                        if script.drop_mid_reply:
                            await _half_reply(ws)
                        if script.drop_before_reply or script.drop_mid_reply:
                            assert request.transport is not None
                            request.transport.close()
                            break
                        if script.function_call is not None:
                            await _call_function(ws, *script.function_call)
                        else:
                            await _reply(ws)
                            if not await _replied(ws, request, script):
                                break
                elif kind == "input_audio_buffer.append" and not script.silent_caller:
                    await ws.send_str(
                        server_event("input_audio_buffer.speech_started", audio_start_ms=0)
                    )
                elif kind == "response.cancel":
                    await ws.send_str(
                        server_event("response.done", response={"status": "cancelled"})
                    )
                elif kind == "response.create":
                    await _reply(ws)
                    if not await _replied(ws, request, script):
                        break
                elif kind == "bogus":
                    await ws.send_str(
                        server_event(
                            "error",
                            error={
                                "type": "invalid_request_error",
                                "code": "unknown_event",
                                "message": "Unknown event",
                            },
                        )
                    )
        finally:
            script.disconnected.set()
        return ws

    return handler
