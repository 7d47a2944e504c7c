"""Transfer benchmark against a private lab Asterisk on 127.0.0.1.

For each call: originate to the lab's recording party, open voicedock's media leg (bridge +
chan_websocket, connected), then ``transfer()`` and wait for TRANSFERRED, i.e. the target is
bridged with the caller:

  * blind to ``sales``: transfer() → Dial ANSWER of the caller toward sales (TRANSFERRED);
    also transfer() → returned (the ARI ``continue`` round trip);
  * warm to ``warmaccept``: transfer() → agent answered (its StasisStart) and transfer() →
    caller bridged with the agent (TRANSFERRED). The lab agent presses 1 two seconds after it
    answers, so the accept step is dominated by that scripted wait: the report subtracts
    nothing and says so.

Usage:
    .venv/bin/python bench/transfer.py [--blind 20] [--warm 5]
Writes bench/results/transfer-<date>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import shutil
import statistics
import time
import uuid
from pathlib import Path

from pbx_events import Events  # bench/, beside this script

from voicedock.config import AsteriskSettings
from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.asterisk.media.legs import leg_id
from voicedock.pbx.asterisk.media.session import MediaSession
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.pbx.base import OriginateRequest, PbxEventKind, TransferTarget
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import LabSettings

CALLER = "+31612345678"  # the lab party that plays prompts and records


async def wait_up(pbx: AsteriskPbx, channel_id: str) -> float:
    """When the channel is Up (the agent answered): polled, the bench has no event for it."""
    while True:
        with contextlib.suppress(AriHttpError):  # 404 until the originate created it
            channel = await pbx.ari.request("GET", f"/channels/{channel_id}")
            if isinstance(channel, dict) and channel.get("state") == "Up":
                return time.perf_counter()
        await asyncio.sleep(0.005)


async def one_transfer(
    pbx: AsteriskPbx, events: Events, target: TransferTarget
) -> dict[str, float]:
    call_id = f"bench-{uuid.uuid4().hex[:12]}"
    await pbx.originate(OriginateRequest(call_id, CALLER, "+31850835037", "carrier"))
    await events.wait(call_id, PbxEventKind.ANSWERED)
    leg = await pbx.open_media(call_id)
    agent_answered: float | None = None
    try:
        async with MediaSession.connect(leg.url):
            await asyncio.sleep(0.3)  # both legs bridged
            agent = leg_id(call_id, "agent")
            start = time.perf_counter()
            await pbx.transfer(call_id, target)
            returned = time.perf_counter()
            if target.mode == "warm":
                agent_answered = await wait_up(pbx, agent)
            bridged = await events.wait(call_id, PbxEventKind.TRANSFERRED)
    finally:
        await pbx.ari.hangup_channel(call_id)
    result = {"returned": (returned - start) * 1000, "bridged": (bridged - start) * 1000}
    if agent_answered is not None:
        result["agent_answered"] = (agent_answered - start) * 1000
    return result


async def run(lab: LabAsterisk, blind: int, warm: int) -> dict[str, list[dict[str, float]]]:
    ari_user, ari_password = lab.ari_credentials
    settings = AsteriskSettings(
        ari_url=lab.ari_url, ari_user=ari_user, ari_password=ari_password, app=lab.settings.app_name
    )
    events = Events()
    pbx = AsteriskPbx(settings, use_ami=False)
    await pbx.start(events)
    results: dict[str, list[dict[str, float]]] = {"blind": [], "warm": []}
    try:
        await pbx.ari.wait_registered(10)
        for _ in range(blind):
            target = TransferTarget("sales", internal=True)
            results["blind"].append(await one_transfer(pbx, events, target))
        for _ in range(warm):
            target = TransferTarget(
                "warmaccept", internal=True, mode="warm", extra={"briefing": "Invoice question."}
            )
            results["warm"].append(await one_transfer(pbx, events, target))
        await asyncio.sleep(1.0)
    finally:
        await pbx.aclose()
    return results


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(name: str, values: list[float]) -> str:
    if not values:
        return f"| {name} | – |"
    return (
        f"| {name} | {statistics.median(values):.1f} / {pct(values, 0.95):.1f} / "
        f"{max(values):.1f} ms |"
    )


def report(results: dict[str, list[dict[str, float]]], command: str) -> str:
    from originate import machine  # bench/ is on sys.path when run as a script

    blind, warm = results["blind"], results["warm"]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    b, w = f"blind ({len(blind)})", f"warm ({len(warm)})"
    rows = [
        row(f"{b}: transfer() returned (ARI continue)", [r["returned"] for r in blind]),
        row(f"{b}: transfer() → target bridged (TRANSFERRED)", [r["bridged"] for r in blind]),
        row(f"{w}: transfer() returned", [r["returned"] for r in warm]),
        row(f"{w}: transfer() → agent answered", [r["agent_answered"] for r in warm]),
        row(f"{w}: transfer() → caller bridged with the agent", [r["bridged"] for r in warm]),
    ]
    return (
        f"# Transfer benchmark, {now}\n\n"
        f"Machine: {machine()}\n"
        "Asterisk: lab instance (Debian testing chroot), everything on 127.0.0.1. Caller = the\n"
        "lab recording party with voicedock's media leg bridged; blind target `sales`, warm\n"
        "target `warmaccept` (answers at once, presses 1 after a scripted 2 s wait).\n\n"
        "| metric | p50 / p95 / max |\n|---|---|\n" + "\n".join(rows) + "\n\n"
        "Warm: caller bridged = agent answered + the agent's scripted 2 s wait + its 250 ms DTMF\n"
        "digit + the swap (so the swap itself takes a few ms).\n\n"
        f"Command: `.venv/bin/python {command}`\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blind", type=int, default=20)
    parser.add_argument("--warm", type=int, default=5)
    args = parser.parse_args()
    settings = LabSettings(instance=f"bench-{os.getpid()}").with_free_ports()
    lab = LabAsterisk(settings, verbose=False)
    try:
        lab.up(timeout=60)
        results = asyncio.run(run(lab, args.blind, args.warm))
    finally:
        lab.down()
        shutil.rmtree(settings.instance_dir, ignore_errors=True)
    text = report(results, f"bench/transfer.py --blind {args.blind} --warm {args.warm}")
    print(text)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    (out / f"transfer-{day}.md").write_text(text)


if __name__ == "__main__":
    main()
