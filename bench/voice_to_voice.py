"""Voice-to-voice time of the offline pipeline: the caller stops talking → the assistant's
first audio frame leaves voicedock.

A `LiveConversation` with the default offline providers (faster-whisper on the packaged
Whisper-base weights, the rule-based policy, Piper with the packaged voice) runs over a real
`MediaSession` against the in-process chan_websocket endpoint of the tests
(`tests/media/fake_asterisk.py`). Caller questions, synthesized once with Piper and carried as
8 kHz µ-law like a phone line, are sent in real time (one 20 ms frame every 20 ms) followed by
silence. Per turn the call's own latency record gives the breakdown: endpointing (the silence
waited), STT final, LLM first token, TTS first audio and first frame sent, each measured from
the endpointing decision. Voice-to-voice = endpointing + first frame sent. The PBX's jitter
buffer and the network are not included.

    .venv/bin/python bench/voice_to_voice.py [--turns 5] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "media"))

from fake_asterisk import FakeAsterisk  # noqa: E402

from voicedock.calls.live import LiveConversation  # noqa: E402
from voicedock.media.codecs import ulaw_encode  # noqa: E402
from voicedock.media.session import MediaSession  # noqa: E402
from voicedock.pipeline.audio import resample_pcm16  # noqa: E402
from voicedock.pipeline.conversation import ConversationConfig  # noqa: E402
from voicedock.pipeline.endpointing import EndpointingConfig  # noqa: E402
from voicedock.pipeline.frames import TurnLatency  # noqa: E402
from voicedock.pipeline.providers import create_stt, create_tts  # noqa: E402

QUESTIONS = (
    "What time do you open tomorrow?",
    "I would like to book an appointment on Monday.",
    "Where are you located?",
    "Can I bring my dog?",
    "Thank you, that is all.",
)
ASSISTANT = {
    "first_message": "Hello, this is the dental clinic.",
    "facts": {"opening hours": "nine to five", "address": "Main Street 1"},
    "stt_config": {"provider": "offline"},
    "llm_config": {"provider": "rule-based"},
    "tts_config": {"provider": "piper"},
}
FRAME = 160  # 20 ms of 8 kHz µ-law
SILENCE = b"\xff" * FRAME


async def phone_line(text: str) -> bytes:
    tts = create_tts({"provider": "piper"})
    try:
        pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
        return ulaw_encode(resample_pcm16(pcm, tts.sample_rate, 8000))
    finally:
        await tts.aclose()


async def send_realtime(ws: object, audio: bytes) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n, i in enumerate(range(0, len(audio), FRAME)):
        await ws.send_bytes(audio[i : i + FRAME].ljust(FRAME, b"\xff"))  # type: ignore[attr-defined]
        await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - loop.time()))


async def run(turns: int) -> list[TurnLatency]:
    lines = [await phone_line(QUESTIONS[i % len(QUESTIONS)]) for i in range(turns)]
    stt = create_stt({"provider": "offline"})
    await stt.warm_up()  # type: ignore[attr-defined]
    await stt.aclose()
    config = ConversationConfig(
        endpointing=EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None),
        stt_timeout_s=60.0,
    )
    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url(), send_silence=False) as media,
        LiveConversation(media, ASSISTANT, config=config) as live,
    ):
        ws = fake.channel().ws
        await asyncio.sleep(3.0)  # the greeting
        for audio in lines:
            replies = sum(e.role == "assistant" for e in live.transcript)
            await send_realtime(ws, SILENCE * 10 + audio + SILENCE * 60)
            async with asyncio.timeout(60):
                while sum(e.role == "assistant" for e in live.transcript) <= replies:
                    await send_realtime(ws, SILENCE * 5)
        await live.end_call(None)
        await asyncio.wait_for(live.wait_ended(), 20)
    assert live.result is not None
    return live.result.latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(latencies: list[TurnLatency]) -> str:
    rows = {
        "endpointing (silence waited)": [t.endpointing_ms for t in latencies],
        "STT final": [t.stt_final_ms or 0.0 for t in latencies],
        "LLM first token": [t.llm_first_token_ms or 0.0 for t in latencies],
        "TTS first audio": [t.tts_first_audio_ms or 0.0 for t in latencies],
        "first frame sent": [t.first_frame_sent_ms or 0.0 for t in latencies],
        "voice-to-voice": [t.endpointing_ms + (t.first_frame_sent_ms or 0.0) for t in latencies],
    }
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        f"# Voice-to-voice, offline pipeline — {now}",
        "",
        f"Machine: {platform.node()} / {platform.platform()} / {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.2f}",
        f"Turns: {len(latencies)}; faster-whisper base (int8, CPU), rule-based policy, Piper; "
        "8 kHz µ-law in real time over a MediaSession (in-process chan_websocket endpoint).",
        "Times in ms; all but endpointing are measured from the endpointing decision.",
        "",
        "| measure | p50 | max | mean |",
        "|---|---|---|---|",
    ]
    for name, values in rows.items():
        out.append(
            f"| {name} | {statistics.median(values):.0f} | {max(values):.0f} "
            f"| {statistics.fmean(values):.0f} |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="write bench/results/…md")
    args = parser.parse_args()
    latencies = asyncio.run(run(args.turns))
    text = report(latencies)
    print(text)
    if args.write:
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        path = ROOT / "bench" / "results" / f"voice_to_voice-{day}.md"
        path.write_text(text)
        print(f"written: {path}")


if __name__ == "__main__":
    main()
