"""What voicedock writes on the providers' wires, as the JSON the provider reads: the typed
request and event models encode to exactly the objects the API documents (and voicedock sent
before they were types)."""

from __future__ import annotations

import json

import msgspec
import pytest

from voicedock.domain.assistant_config import TtsConfig, VoiceSettings
from voicedock.pipeline.frames import ChatMessage, ToolCall
from voicedock.pipeline.providers._http import SocketItems
from voicedock.pipeline.providers.base import ProviderResponseError
from voicedock.pipeline.providers.elevenlabs import ElevenLabsTts
from voicedock.pipeline.providers.openai_audio import OpenAiTts
from voicedock.pipeline.providers.openai_compat import chat_request_body
from voicedock.pipeline.providers.realtime import (
    audio_append,
    function_output,
    response_create,
    session_update,
    text_item,
)
from voicedock.pipeline.tools import ToolSpec

pytestmark = pytest.mark.unit

LOOKUP = ToolSpec(
    "lookup",
    "Find an order.",
    {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
)


def sent(value: object) -> object:
    """``value`` as the provider decodes it."""
    return json.loads(msgspec.json.encode(value))


def test_the_realtime_session_update_is_the_documented_event() -> None:
    pcm = {"format": {"type": "audio/pcm", "rate": 24000}}
    session = {
        "instructions": "Be brief.",
        "voice": "Ara",
        "turn_detection": {"type": "server_vad"},
        "audio": {"input": pcm, "output": pcm},
    }
    plain = session_update(instructions="Be brief.", voice="Ara", sample_rate=24000)
    assert sent(plain) == {"type": "session.update", "session": session}
    with_tools = session_update(
        instructions="Be brief.", voice="Ara", sample_rate=24000, tools=[LOOKUP]
    )
    tool = {"type": "function", **LOOKUP.openai_tool()["function"]}
    assert sent(with_tools) == {"type": "session.update", "session": {**session, "tools": [tool]}}


def test_the_realtime_client_events_are_the_documented_events() -> None:
    assert sent(audio_append(b"\x00\x01")) == {
        "type": "input_audio_buffer.append",
        "audio": "AAE=",
    }
    assert sent(text_item("system", "Note.")) == {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": "Note."}],
        },
    }
    assert sent(function_output("fc_1", '{"ok":true}')) == {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "fc_1", "output": '{"ok":true}'},
    }
    assert sent(response_create()) == {"type": "response.create"}
    assert sent(response_create("Say it.")) == {
        "type": "response.create",
        "response": {"instructions": "Say it."},
    }


def test_the_chat_request_carries_tool_calls_results_and_options() -> None:
    call = ToolCall("call_1", "lookup", '{"order":"42"}')
    messages = [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Where is order 42?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "shipped", tool_call_id="call_1"),
    ]
    body = chat_request_body("gpt-x", messages, {"temperature": 0.2}, [LOOKUP])
    assert sent(body) == {
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Where is order 42?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"order":"42"}'},
                    }
                ],
            },
            {"role": "tool", "content": "shipped", "tool_call_id": "call_1"},
        ],
        "stream": True,
        "tools": [LOOKUP.openai_tool()],
        "temperature": 0.2,
    }


def test_the_speech_bodies_name_only_what_is_set() -> None:
    plain = OpenAiTts(TtsConfig(api_key="k", voice="coral"))
    assert sent(plain.request_body("Hi.")) == {
        "model": "gpt-4o-mini-tts",
        "input": "Hi.",
        "voice": "coral",
        "response_format": "pcm",
    }
    tuned = OpenAiTts(TtsConfig(api_key="k", instructions="Warmly.", speed=1.25))
    assert sent(tuned.request_body("Hi.")) == {
        "model": "gpt-4o-mini-tts",
        "input": "Hi.",
        "voice": "alloy",
        "response_format": "pcm",
        "instructions": "Warmly.",
        "speed": 1.25,
    }
    eleven = ElevenLabsTts(TtsConfig(api_key="k", voice_id="v1"))
    assert sent(eleven.request_body("Hi.")) == {"text": "Hi.", "model_id": "eleven_flash_v2_5"}
    tuned_eleven = ElevenLabsTts(
        TtsConfig(
            api_key="k",
            voice_id="v1",
            language_code="de",
            voice_settings=VoiceSettings(stability=0.5),
        )
    )
    assert sent(tuned_eleven.request_body("Hallo.")) == {
        "text": "Hallo.",
        "model_id": "eleven_flash_v2_5",
        "language_code": "de",
        "voice_settings": {"stability": 0.5},
    }


async def test_a_sockets_items_end_for_every_later_iteration_and_raise_its_error() -> None:
    items: SocketItems[str] = SocketItems()
    await items.put("one")
    await items.end()
    assert [item async for item in items] == ["one"]
    assert [item async for item in items] == []  # ended for good
    failing: SocketItems[str] = SocketItems()
    await failing.put("two")
    await failing.put(ProviderResponseError("broken"))
    seen: list[str] = []

    async def drain() -> None:
        async for item in failing:
            seen.append(item)

    with pytest.raises(ProviderResponseError, match="broken"):
        await drain()
    assert seen == ["two"]
