"""Settings of the FreeSWITCH Event Socket client and its reconnect backoff."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from voicedock.backoff import Backoff
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
    # The reconnect's delays (``backoff.Backoff``): ``backoff_initial`` doubling up to
    # ``backoff_max``, up to half of each randomised away.
    backoff_initial: float = 0.5
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        if self.password == DEFAULT_PASSWORD and not self.allow_default_password:
            raise EslDefaultPassword
        if not self.password:
            raise ConfigError("freeswitch.password", "must not be empty")

    def reconnect_backoff(self) -> Backoff:
        """The delays between reconnect attempts. Each is at least half of its step, so the
        steps grow only with the time already spent waiting: once FreeSWITCH is back, the next
        attempt comes within about twice the outage (``backoff_max`` at most), however many
        attempts failed quickly while it was down."""
        return Backoff(initial=self.backoff_initial, cap=self.backoff_max)
