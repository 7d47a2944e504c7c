"""Playback on the real lab FreeSWITCH: gaps between chunks, first frame → heard, the tail.

A private lab FreeSWITCH (1.11.1 with the community mod_audio_stream) on 127.0.0.1. Each call
goes through ``FreeswitchPbx`` (the service's adapter: originate on the trunk, ``call_media``
over mod_audio_stream) to the lab party that records what it hears and echoes it back. Once the
media is up, the assistant says one continuous 440 Hz tone (``--seconds``, default 3 s) with
``media.play``; when ``played()`` resolves the call is hung up at once, as end-call does. Then,
from the party's recording (``voicedock_lab.heard``):

* **holes**: silent runs inside the tone (5 ms windows), i.e. the gaps between the chunks;
* **first frame → heard**: from ``media.play`` to the tone's onset in the recording, whose
  sample 0 is taken as our CHANNEL_ANSWER (the party answers, then records; the error is the
  SIP/ESL delivery of the answer, a few ms); cross-checked with the echo's round trip
  (``media.play`` → the tone back on the inbound stream, our clock only);
* **heard / sent**: how much of the tone the party heard before the hang-up.

Modes, in the same run, alternating call by call:

* ``before``: what voicedock did until now: each file with ``uuid_broadcast`` (which waits
  5 frames before every file), ``played()`` timed from the websocket send, and no RTP while
  the parked leg has nothing to play;
* ``sendmsg``: files queued with ``sendmsg`` ``execute playback`` (no lead frames);
* ``queued``: and ``played()`` timed from when each file is queued on the channel;
* ``after``: and ``send_silence_when_idle=-1`` on the originate: the fix as shipped.

Usage:
    .venv/bin/python bench/fs_playback.py [--calls 5] [--seconds 3]
Writes bench/results/fs_playback-<date>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
from pbx_events import Events  # bench/, beside this script

from voicedock.config import FreeswitchSettings
from voicedock.domain.ids import new_outbound_call_id
from voicedock.media.pacer import FRAME_PERIOD
from voicedock.pbx.base import OriginateRequest, PbxEventKind
from voicedock.pbx.freeswitch import originate as freeswitch_originate
from voicedock.pbx.freeswitch.commands import build_originate, build_uuid_broadcast
from voicedock.pbx.freeswitch.media.hub import EslPlaybackControl
from voicedock.pbx.freeswitch.media.playout import PlayoutTimeline, Segment
from voicedock.pbx.freeswitch.pbx import FreeswitchPbx
from voicedock_lab.freeswitch import LabFreeswitch, remove_instance
from voicedock_lab.freeswitch_config import RECORDS_AND_ECHOES, FreeswitchLabSettings
from voicedock_lab.heard import Heard, listen, read_recording

RATE = 8000
MODES = ("before", "sendmsg", "queued", "after")


@contextlib.contextmanager
def mode(name: str) -> Iterator[None]:
    """Put back, for the length of one call, what main did (``before``) or part of it."""
    originate = build_originate

    async def broadcast(self: EslPlaybackControl, path: str) -> None:
        await self._esl.api(build_uuid_broadcast(self._uuid, path, "aleg"))

    def scheduled_at_send(self: PlayoutTimeline, index: int, segments: list[Segment]) -> None:
        self.schedule(segments)  # main: the clock starts when the websocket message is sent

    def without_idle_silence(**fields: Any) -> str:
        return originate(**fields).replace(",send_silence_when_idle=-1", "")

    with contextlib.ExitStack() as patches:
        if name == "before":
            patches.enter_context(patch.object(EslPlaybackControl, "play_file", broadcast))
        if name in ("before", "sendmsg"):
            patches.enter_context(patch.object(PlayoutTimeline, "sent", scheduled_at_send))
        if name != "after":
            patches.enter_context(
                patch.object(freeswitch_originate, "build_originate", without_idle_silence)
            )
        yield


def tone(seconds: float) -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


async def one_call(
    pbx: FreeswitchPbx, events: Events, lab: LabFreeswitch, seconds: float
) -> dict[str, float | list[float]]:
    call_id = new_outbound_call_id()
    request = OriginateRequest(
        call_id, RECORDS_AND_ECHOES, lab.settings.service_dids[0], lab.settings.trunk_name
    )
    before = set(lab.recordings_dir.glob(f"{RECORDS_AND_ECHOES}-*.wav"))
    await pbx.originate(request)
    answered = await events.wait(call_id, PbxEventKind.ANSWERED)
    async with pbx.call_media(call_id, media_format="slin") as media:
        await asyncio.sleep(0.5)  # the stream is up and idle
        inbound = media.inbound_audio()
        queued_at: list[float] = []  # when each file was queued on the channel (sendmsg +OK)
        queue = media.timeline.queued

        def queued(index: int, latency: float = FRAME_PERIOD) -> None:
            queued_at.append(time.perf_counter())
            queue(index, latency)

        with patch.object(media.timeline, "queued", queued):
            started = time.perf_counter()
            playback = media.play(tone(seconds))
            echoed: float | None = None

            async def echo() -> None:
                nonlocal echoed
                async for frame in inbound:
                    pcm = np.frombuffer(frame, dtype="<i2").astype(np.float64)
                    if np.sqrt(np.mean(pcm**2)) > 1000:
                        echoed = time.perf_counter()
                        return

            listener = asyncio.create_task(echo())
            result = await asyncio.wait_for(playback.played(), seconds + 10)
            played = time.perf_counter()
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await media.hangup()  # end-call: hang up as soon as it was played
    await events.wait(call_id, PbxEventKind.HANGUP)
    (recording,) = set(lab.recordings_dir.glob(f"{RECORDS_AND_ECHOES}-*.wav")) - before
    heard = await asyncio.to_thread(heard_in, recording)
    if heard.onset_s is None:
        raise RuntimeError(f"{recording.name}: the party heard nothing")
    return {
        "completed": float(result.completed),
        "played_s": played - started,
        "queued_ms": (queued_at[0] - started) * 1000 if queued_at else float("nan"),
        "heard_delay_ms": (answered + heard.onset_s - started) * 1000,
        "echo_rtt_ms": float("nan") if echoed is None else (echoed - started) * 1000,
        "heard_s": heard.loud_s,
        "span_s": heard.span_s,
        "holes_ms": heard.holes_ms,
        "holes_at_s": heard.holes_at_s,
    }


def heard_in(path: Path) -> Heard:
    """The recording once FreeSWITCH has written it all (its size holds still)."""
    size, deadline = -1, time.perf_counter() + 10
    while path.stat().st_size != size or size <= 44:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{path.name} is still being written")
        size = path.stat().st_size
        time.sleep(0.2)
    samples, rate = read_recording(path)
    return listen(samples, rate)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(values, q))


def summary(rows: list[dict[str, float | list[float]]], seconds: float) -> dict[str, str]:
    def col(key: str) -> list[float]:
        return [float(r[key]) for r in rows if not np.isnan(float(r[key]))]  # type: ignore[arg-type]

    holes = [h for r in rows for h in r["holes_ms"]]  # type: ignore[union-attr]
    per_call = [len(r["holes_ms"]) for r in rows]  # type: ignore[arg-type]

    def three(values: list[float], digits: int = 0) -> str:
        if not values:
            return "–"
        p50, p95, top = pct(values, 50), pct(values, 95), max(values)
        return f"{p50:.{digits}f} / {p95:.{digits}f} / {top:.{digits}f}"

    return {
        "holes per call (min–max)": f"{min(per_call)}–{max(per_call)}",
        "hole length, ms (p50 / p95 / max)": three(holes),
        "first frame → first file queued on the channel, ms (p50 / p95 / max)": three(
            col("queued_ms")
        ),
        "first frame → heard, ms (p50 / p95 / max)": three(col("heard_delay_ms")),
        "first frame → echo back, ms (p50 / p95 / max)": three(col("echo_rtt_ms")),
        f"heard of the {seconds:g} s tone before the hang-up, s (min)": (
            f"{min(col('heard_s')):.2f}"
        ),
        "span heard (onset → last sound), s (p50)": f"{statistics.median(col('span_s')):.2f}",
        "played() after play(), s (p50)": f"{statistics.median(col('played_s')):.2f}",
        "played() completed": f"{int(sum(col('completed')))}/{len(rows)}",
    }


async def run(calls: int, seconds: float, keep: bool) -> str:
    settings = FreeswitchLabSettings(instance=f"bench-fsplayback-{os.getpid()}").with_free_ports()
    lab = LabFreeswitch(settings, verbose=False)
    await asyncio.to_thread(lab.up, timeout=60)
    rows: dict[str, list[dict[str, float | list[float]]]] = {m: [] for m in MODES}
    try:
        fs = FreeswitchSettings(esl_port=lab.esl_port, esl_password=lab.esl_password, media_port=0)
        events = Events()
        async with FreeswitchPbx(fs, dids=[]) as pbx:
            await pbx.start(events)
            for i in range(calls):
                for name in MODES:
                    with mode(name):
                        row = await one_call(pbx, events, lab, seconds)
                    rows[name].append(row)
                    print(f"call {i + 1} {name}: {row}", flush=True)
    finally:
        await asyncio.to_thread(lab.down)
        if not keep:
            remove_instance(lab)
    table = {m: summary(rows[m], seconds) for m in MODES}
    return report(table, calls, seconds)


def report(table: dict[str, dict[str, str]], calls: int, seconds: float) -> str:
    now = dt.datetime.now(dt.UTC)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"# FreeSWITCH playback benchmark, {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, "
        f"Python {platform.python_version()}; load average at the end {load} (shared machine).",
        "FreeSWITCH 1.11.1 + community mod_audio_stream (lab build), everything on 127.0.0.1.",
        f"{calls} calls per mode, modes alternating call by call; each call: `FreeswitchPbx` "
        f"originate to the lab party that records and echoes, `call_media(slin)`, one "
        f"{seconds:g} s 440 Hz tone with `media.play` (400 ms chunks, 1200 ms lead), hang-up as "
        "soon as `played()` resolves. Measured on the party's recording (5 ms windows).",
        "",
        "| metric | " + " | ".join(MODES) + " |",
        "|---|" + "---|" * len(MODES),
    ]
    for key in table[MODES[0]]:
        lines.append(f"| {key} | " + " | ".join(table[m][key] for m in MODES) + " |")
    lines += [
        "",
        "before = main until now: `uuid_broadcast` per file, `played()` clock from the "
        "websocket send, RTP paused while parked; sendmsg = files queued with `sendmsg` "
        "`execute playback` (no lead frames), the rest as before; queued = sendmsg and the "
        "`played()` clock anchored when each file is queued on the channel; after = queued "
        "and `send_silence_when_idle=-1` on the originate (the RTP never pauses): the fix.",
        "",
        f"Command: `.venv/bin/python bench/fs_playback.py --calls {calls} --seconds {seconds:g} "
        "--write`",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--keep", action="store_true", help="keep the lab instance dir")
    parser.add_argument("--write", action="store_true", help="write bench/results/")
    args = parser.parse_args()
    text = asyncio.run(run(args.calls, args.seconds, args.keep))
    print(text)
    if args.write:
        out = Path(__file__).parent / "results" / f"fs_playback-{dt.date.today()}.md"
        out.write_text(text)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
