"""An AMI observer of one trunk, independent of the service: its own AMI session counts the
trunk's channels as Asterisk creates and destroys them (``Newchannel`` / ``Hangup``), at the
time Asterisk stamps on each event (``timestampevents``), not when the event is read, and
keeps the hang-up cause Asterisk reports for each of them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from voicedock_lab.ami_probe import encode_action, split_messages
from voicedock_lab.server import LabAsterisk


@dataclass
class TrunkObservation:
    """When each trunk channel was created (Asterisk's clock, epoch seconds), and the most
    channels there were at once."""

    trunk: str
    created: list[float] = field(default_factory=list)
    live: set[str] = field(default_factory=set)
    most_at_once: int = 0
    by_id: dict[str, float] = field(default_factory=dict)  # Uniqueid (ARI: our channel id)
    # Uniqueid -> (Q.850 cause, SIP status or None) of each trunk channel hung up.
    causes: dict[str, tuple[int, int | None]] = field(default_factory=dict)

    def max_in_any_second(self) -> int:
        most, start, created = 0, 0, sorted(self.created)
        for end, moment in enumerate(created):
            while moment - created[start] >= 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most

    def created_between(self, start: float, end: float) -> int:
        return sum(1 for moment in self.created if start <= moment < end)

    def seen(self, event: dict[str, str]) -> None:
        channel = event.get("Channel", "")
        if not channel.startswith(f"PJSIP/{self.trunk}-"):
            return
        if event.get("Event") == "Newchannel" and channel not in self.live:
            moment = float(event.get("Timestamp") or time.time())
            self.created.append(moment)
            self.by_id[event.get("Uniqueid", channel)] = moment
            self.live.add(channel)
            self.most_at_once = max(self.most_at_once, len(self.live))
        elif event.get("Event") == "Hangup":
            self.live.discard(channel)
            tech = event.get("TechCause", "")
            self.causes[event.get("Uniqueid", channel)] = (
                int(event.get("Cause") or 0),
                int(tech) if tech.isdigit() else None,
            )

    async def hangup_cause(self, unique_id: str, within: float = 10.0) -> tuple[int, int | None]:
        """(Q.850 cause, SIP status) of the channel ``unique_id`` once Asterisk hung it up."""
        async with asyncio.timeout(within):
            while unique_id not in self.causes:
                await asyncio.sleep(0.02)
        return self.causes[unique_id]


@contextlib.asynccontextmanager
async def observe_trunk(lab: LabAsterisk, trunk: str) -> AsyncIterator[TrunkObservation]:
    observation = TrunkObservation(trunk)
    reader, writer = await asyncio.open_connection(lab.ami_host, lab.ami_port)
    user, secret = lab.ami_credentials
    await reader.readline()  # banner
    writer.write(
        encode_action(
            [("Action", "Login"), ("Username", user), ("Secret", secret), ("Events", "call")]
        )
    )
    await writer.drain()

    async def read() -> None:
        buffer = b""
        while chunk := await reader.read(65536):
            messages, buffer = split_messages(buffer + chunk)
            for message in messages:
                observation.seen(message)

    task = asyncio.create_task(read())
    try:
        yield observation
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
