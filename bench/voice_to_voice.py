"""Voice-to-voice time of the offline pipeline: the caller stops talking → the assistant's
first audio frame leaves voicedock. Two configurations side by side on the same utterances:

* before: each turn transcribed once it has ended, on Whisper's full 30 s window, after a
  fixed 600 ms of silence (``encoder_context = "full"``, ``streaming = false``,
  ``[speech.endpointing] mode = "fixed"``);
* after: the defaults: the turn transcribed while spoken on a short encoder context, the
  speculative transcript of the pause as the final, adaptive endpointing.

A `LiveConversation` with the offline providers (faster-whisper on the packaged Whisper-base
weights, the rule-based policy, Piper with the packaged voice) runs over a real `MediaSession`
against the in-process chan_websocket endpoint of the tests (`tests/media/fake_asterisk.py`).
Caller sentences of 3-8 s, synthesized once with Piper and carried as 8 kHz µ-law like a phone
line, are sent in real time (one 20 ms frame every 20 ms) followed by silence. The turns run in
blocks of five per call, alternating between the configurations, so a change of the machine's
load falls on both. Per turn the call's own latency record gives the breakdown: endpointing
(the silence waited), STT final, LLM first token, TTS first audio and first frame sent, each
measured from the endpointing decision. Voice-to-voice = endpointing + first frame sent. The
PBX's jitter buffer and the network are not included. Word error rate: the caller's transcript
against the sentence synthesized.

    .venv/bin/python bench/voice_to_voice.py [--turns 20] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import platform
import re
import statistics
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "media"))

from fake_asterisk import FakeAsterisk  # noqa: E402

from voicedock.calls.live.conversation import LiveConversation  # noqa: E402
from voicedock.domain.assistant_config import SttConfig, TtsConfig, config_of  # noqa: E402
from voicedock.media.codecs import ulaw_encode  # noqa: E402
from voicedock.pbx.asterisk.media.session import MediaSession  # noqa: E402
from voicedock.pipeline.audio import resample_pcm16  # noqa: E402
from voicedock.pipeline.dialogue.turn_engine import ConversationConfig  # noqa: E402
from voicedock.pipeline.frames import TurnLatency  # noqa: E402
from voicedock.pipeline.hearing.endpointing import EndpointingConfig  # noqa: E402
from voicedock.pipeline.providers.registry import create_stt, create_tts  # noqa: E402

# Caller sentences of 3-8 s with the packaged Piper voice.
SENTENCES = (
    "I would like to book an appointment on Monday morning, if that is possible.",
    "Hello, I am calling about my order from last week, it has not arrived yet.",
    "My account number is four five seven two, and I need to change my address.",
    "Could you tell me what time you open tomorrow and when you close?",
    "I have a terrible toothache and I would like to see a dentist today.",
    "Is there a parking space near your office, or should I take the bus?",
    "I need to cancel my appointment on Thursday because I will be travelling.",
    "Can you send me the invoice for last month by email, please?",
    "My daughter needs a check up, do you have anything free next week?",
    "I would like to know whether you accept my insurance from the company.",
    "We are moving to a new house and I want to update my phone number.",
    "The last time I was there the waiting room was very crowded.",
    "Please ask the doctor to call me back this afternoon after three.",
    "I forgot my password and I cannot log in to my account any more.",
    "How much does a cleaning cost if I do not have any insurance?",
    "I am running about fifteen minutes late for my appointment today.",
    "Do you also offer appointments on Saturday mornings for working people?",
    "My husband would like to come with me, is that all right with you?",
    "I received a letter from you yesterday and I do not understand it.",
    "Thank you very much for your help, I will see you next Tuesday.",
)
ASSISTANT = {
    "first_message": "Hello, this is the dental clinic.",
    "facts": {"opening hours": "nine to five", "address": "Main Street 1"},
    "llm_config": {"provider": "rule-based"},
    "tts_config": {"provider": "piper"},
}
CONFIGURATIONS: dict[str, tuple[Mapping[str, Any], str]] = {
    # name: (stt_config, endpointing mode)
    "before": ({"provider": "offline", "encoder_context": "full", "streaming": False}, "fixed"),
    "after": ({"provider": "offline"}, "adaptive"),
}
BLOCK = 5  # turns per call
FRAME = 160  # 20 ms of 8 kHz µ-law
SILENCE = b"\xff" * FRAME


@dataclasses.dataclass(slots=True)
class Turn:
    said: str
    heard: str
    latency: TurnLatency


async def phone_line(text: str) -> bytes:
    tts = create_tts(TtsConfig(provider="piper"))
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


async def one_call(name: str, lines: list[tuple[str, bytes]]) -> list[Turn]:
    stt_config, mode = CONFIGURATIONS[name]
    config = ConversationConfig(
        endpointing=EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None, mode=mode),
        stt_timeout_s=60.0,
    )
    assistant = {**ASSISTANT, "stt_config": dict(stt_config)}
    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url(), send_silence=False) as media,
        LiveConversation(media, config_of(assistant), config=config) as live,
    ):
        ws = fake.channel().ws
        await asyncio.sleep(3.0)  # the greeting
        for _said, audio in lines:
            replies = sum(e.role == "assistant" for e in live.transcript)
            await send_realtime(ws, SILENCE * 10 + audio + SILENCE * 60)
            async with asyncio.timeout(60):
                while sum(e.role == "assistant" for e in live.transcript) <= replies:
                    await send_realtime(ws, SILENCE * 5)
        await live.end_call(None)
        await asyncio.wait_for(live.wait_ended(), 20)
    assert live.result is not None
    heard = [e.content for e in live.result.transcript if e.role == "user"]
    latencies = live.result.latencies
    if not len(heard) == len(latencies) == len(lines):
        raise SystemExit(f"{name}: a turn was split or lost: {heard}")
    return [Turn(s, h, t) for (s, _), h, t in zip(lines, heard, latencies, strict=True)]


async def run(turns: int) -> dict[str, list[Turn]]:
    said = [SENTENCES[i % len(SENTENCES)] for i in range(turns)]
    lines = [(text, await phone_line(text)) for text in said]
    stt = create_stt(SttConfig(provider="offline"))
    await stt.warm_up()  # type: ignore[attr-defined]
    await stt.aclose()
    results: dict[str, list[Turn]] = {name: [] for name in CONFIGURATIONS}
    for start in range(0, turns, BLOCK):
        for name in CONFIGURATIONS:
            results[name] += await one_call(name, lines[start : start + BLOCK])
    return results


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_errors(said: str, heard: str) -> tuple[int, int]:
    """(edit distance in words, words said)."""
    ref, hyp = _words(said), _words(heard)
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, other in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (word != other))
    return row[-1], len(ref)


def _rows(turns: list[Turn]) -> dict[str, list[float]]:
    latencies = [t.latency for t in turns]
    return {
        "endpointing (silence waited)": [t.endpointing_ms for t in latencies],
        "STT final after endpointing": [t.stt_final_ms or 0.0 for t in latencies],
        "LLM first token": [t.llm_first_token_ms or 0.0 for t in latencies],
        "first frame sent": [t.first_frame_sent_ms or 0.0 for t in latencies],
        "voice-to-voice": [t.endpointing_ms + (t.first_frame_sent_ms or 0.0) for t in latencies],
    }


def report(results: dict[str, list[Turn]], command: str, loads: tuple[float, float]) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    count = len(next(iter(results.values())))
    out = [
        f"# Voice-to-voice, offline pipeline: before / after streaming STT — {now}",
        "",
        f"Machine: {platform.node()} / {platform.platform()} / {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; load average (1 min) {loads[0]:.2f} at the "
        f"start, {loads[1]:.2f} at the end (the machine is shared).",
        f"Command: `{command}`",
        f"Turns: {count} per configuration, the same Piper sentences of 3-8 s; faster-whisper "
        "base (int8, CPU), rule-based policy, Piper; 8 kHz µ-law in real time over a "
        "MediaSession (in-process chan_websocket endpoint).",
        "before: whole-turn transcription on the full 30 s window after a fixed 600 ms; "
        "after: streaming transcription on a short encoder context, adaptive endpointing.",
        "Times in ms; all but endpointing are measured from the endpointing decision.",
        "",
        "| measure | before p50 | before p95 | before max | after p50 | after p95 | after max |",
        "|---|---|---|---|---|---|---|",
    ]
    before, after = (_rows(results[name]) for name in ("before", "after"))
    for measure, values in before.items():
        cells = [
            f"{f(v):.0f}"
            for v in (values, after[measure])
            for f in (statistics.median, lambda x: _pct(x, 0.95), max)
        ]
        out.append(f"| {measure} | " + " | ".join(cells) + " |")
    out.append("")
    for name, turns in results.items():
        errors = [word_errors(t.said, t.heard) for t in turns]
        wer = sum(e for e, _ in errors) / max(1, sum(n for _, n in errors))
        exact = sum(e == 0 for e, _ in errors)
        out.append(
            f"Word error rate {name}: {100 * wer:.1f} % ({exact} of {len(turns)} turns exact)."
        )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--write", action="store_true", help="write bench/results/…md")
    args = parser.parse_args()
    start_load = os.getloadavg()[0]
    results = asyncio.run(run(args.turns))
    command = " ".join([".venv/bin/python", *sys.argv])
    text = report(results, command, (start_load, os.getloadavg()[0]))
    print(text)
    for name, turns in results.items():
        for turn in turns:
            errors, _ = word_errors(turn.said, turn.heard)
            if errors:
                print(f"{name}: {turn.said!r} heard as {turn.heard!r}")
    if args.write:
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        path = ROOT / "bench" / "results" / f"voice_to_voice-{day}.md"
        path.write_text(text)
        print(f"written: {path}")


if __name__ == "__main__":
    main()
