"""The transfers context of the dialplan, as both kinds of Asterisk transfer use it: where a
target lives there (its extension and channel variables) and the settings a transfer runs with.

Blind transfers (``native.py``) continue the caller's channel into the context; warm ones
(``warm.py``) originate the agent's leg there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voicedock.config import AsteriskSettings
from voicedock.errors import PbxError
from voicedock.pbx.base import TransferTarget
from voicedock.validation import is_e164, is_token


class TransferRefused(PbxError):
    """The transfer target cannot be expressed in the dialplan (nothing was sent)."""


@dataclass(frozen=True, slots=True)
class DialplanTarget:
    """Where a transfer target lives in the transfers context."""

    extension: str
    variables: dict[str, str] = field(default_factory=dict)


def dialplan_target(target: TransferTarget) -> DialplanTarget:
    """The transfers-context extension (and channel variables) for ``target``.

    E.164 numbers and plain names are extensions as they are; ``queue:<name>`` is exten
    ``queue-<name>``; ``sip:<user>@<host>`` is exten ``sip-uri`` with the URI in
    ``VOICEDOCK_TRANSFER_URI``. The destination passed the policy's strict forms already; this
    re-checks, because a dial string must never carry a separator.
    """
    destination = target.destination
    if is_e164(destination):
        return DialplanTarget(destination)
    if not target.internal:
        raise TransferRefused("an external transfer destination must be E.164")
    if is_token(destination):
        return DialplanTarget(destination)
    kind, _, rest = destination.partition(":")
    if kind == "queue" and is_token(rest):
        return DialplanTarget(f"queue-{rest}")
    user, _, host = rest.partition("@")
    if kind == "sip" and is_token(user) and is_token(host):
        return DialplanTarget("sip-uri", {"VOICEDOCK_TRANSFER_URI": f"sip:{user}@{host}"})
    raise TransferRefused("transfer destination has no dialplan form")


@dataclass(frozen=True, slots=True)
class TransferSettings:
    app: str
    context: str
    answer_timeout: int = 30  # seconds the agent's phone may ring
    decision_timeout: float = 20.0  # seconds after the briefing to press 1 or 2 (or speak)
    media_format: str = "ulaw"
    hold_media: str = "tone:ring"  # what the caller hears meanwhile; "moh:<class>" for MOH
    voice_decision: bool = True  # the agent may also say "yes" / "no" (offline STT)

    @classmethod
    def from_config(cls, asterisk: AsteriskSettings) -> TransferSettings:
        """From ``[pbx.asterisk]`` and its ``[pbx.asterisk.transfer]`` table."""
        warm = asterisk.transfer
        return cls(
            asterisk.app,
            asterisk.transfer_context,
            answer_timeout=warm.answer_timeout_seconds,
            decision_timeout=float(warm.decision_timeout_seconds),
            hold_media=warm.hold_media,
            voice_decision=warm.voice_decision,
        )
