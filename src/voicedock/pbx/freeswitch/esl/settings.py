"""Settings of the FreeSWITCH Event Socket client and its reconnect backoff."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from voicedock.backoff import exponential
from voicedock.errors import ConfigError
from voicedock.pbx.freeswitch.esl.errors import EslDefaultPassword

DEFAULT_PASSWORD = "ClueCon"  # noqa: S105 - the vanilla event_socket.conf.xml value, refused
DEFAULT_EVENTS = (
    "CHANNEL_CREATE",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_HANGUP_COMPLETE",
    "DTMF",
    "BACKGROUND_JOB",
    "CUSTOM",
)


@dataclass(frozen=True, slots=True)
class EslSettings:
    host: str
    port: int
    password: str
    events: Sequence[str] = DEFAULT_EVENTS
    allow_default_password: bool = False  # only for tests against a fake
    connect_timeout: float = 5.0
    command_timeout: float = 10.0
    keepalive_interval: float = 15.0
    keepalive_timeout: float = 5.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        if self.password == DEFAULT_PASSWORD and not self.allow_default_password:
            raise EslDefaultPassword
        if not self.password:
            raise ConfigError("freeswitch.password", "must not be empty")


def next_backoff(attempt: int, initial: float, maximum: float) -> float:
    """Capped exponential backoff with jitter: uniform in [initial/2, min(max, initial·2^n)]."""
    ceiling = exponential(attempt, first=initial, factor=2.0, cap=maximum)
    return random.uniform(initial / 2, max(initial / 2, ceiling))
