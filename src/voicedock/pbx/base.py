"""The seam between the call engine and a PBX.

The engine above this module knows nothing of AMI, ARI or ESL; an adapter below it (Asterisk,
FreeSWITCH, or a test double) implements ``Pbx`` and reports what happens to each call as
``PbxEvent``s to the engine's ``PbxEventSink``. Adapters never re-send a side-effecting action
(originate, transfer) after a reconnect: they fail it and let ``reconcile`` settle the state.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterable, Awaitable, Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from aiohttp import web

    from voicedock.domain.attestation import CallerAttestation
    from voicedock.domain.audio import AudioFormat
    from voicedock.media.call_media import CallMedia


class PbxEventKind(enum.StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"
    HANGUP = "hangup"  # the remote leg is gone (normal end or failure: see cause/tech_cause)
    DTMF = "dtmf"
    TRANSFERRED = "transferred"  # the caller left voicedock for the transfer target
    TRANSFER_FAILED = "transfer-failed"
    PBX_RESTARTED = "pbx-restarted"  # the PBX lost every call it had


@dataclass(frozen=True, slots=True)
class PbxEvent:
    call_id: str
    kind: PbxEventKind
    cause: int | None = None  # Q.850 cause code
    tech_cause: int | None = None  # SIP status code
    digit: str | None = None
    detail: str = ""
    # For the logs, when the adapter knows it: what failed (the step and the PBX's answer).
    reason: str = ""


PbxEventSink = Callable[[PbxEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OriginateRequest:
    """An outbound call. Every field is already validated (E.164, known trunk)."""

    call_id: str  # ours; becomes the PBX channel id / uuid so the PBX refuses duplicates
    destination: str  # E.164
    caller_id: str  # E.164, from the chosen phone number
    trunk_endpoint: str  # PJSIP endpoint / sofia gateway name
    timeout_seconds: int = 30
    media_format: str = "ulaw"
    pbx: str = ""  # the server carrying the trunk (``pbx/several``); "": the only one


@dataclass(frozen=True, slots=True)
class InboundCall:
    """A call the PBX handed to voicedock (a DID of one of our numbers)."""

    pbx_call_ref: str
    caller: str
    called: str
    pbx: str = ""  # the server it came from (``pbx/several``); "": the only one
    # The host of the call's SIP Request-URI, as the PBX passed it ("": not known): an
    # organization's sip domain takes calls only to that organization's numbers.
    domain: str = ""
    # The caller's STIR/SHAKEN attestation as the carrier sent it (None: none, not verified).
    attestation: CallerAttestation | None = None


@dataclass(frozen=True, slots=True)
class TransferTarget:
    """Where ``transfer`` sends the caller: an E.164 number via a trunk or a named target."""

    destination: str
    trunk_endpoint: str | None = None  # for E.164 destinations
    internal: bool = False
    mode: str = "blind"  # "blind" | "warm"
    extra: dict[str, str] = field(default_factory=dict)  # BRIEFING_KEY: a warm transfer's


BRIEFING_KEY = "briefing"  # in TransferTarget.extra: what a warm transfer tells the agent


@dataclass(frozen=True, slots=True)
class PbxHealth:
    """What ``GET /health`` reports of the PBX: each connection voicedock needs to place calls.

    ``links`` names each connection (``"ari"``, ``"ami"``, ``"esl"``) with whether it is up now;
    no host, port or credential. ``kind = "none"`` has no links and places no calls. Several
    servers (``pbx/several``): ``servers`` holds each one's health by name, ``links`` all of
    their links as ``"<server>.<link>"``; calls can be placed while any server can.
    """

    kind: str  # "asterisk" | "freeswitch" | "none" (or a test double's name)
    links: Mapping[str, bool] = field(default_factory=dict)
    servers: Mapping[str, PbxHealth] = field(default_factory=dict)
    # Connections made again after the first, per link since start (metrics; never /health).
    reconnects: Mapping[str, int] = field(default_factory=dict)

    @property
    def can_place_calls(self) -> bool:
        if self.servers:
            return any(server.can_place_calls for server in self.servers.values())
        return self.all_up

    @property
    def all_up(self) -> bool:
        """Every link is up (of every server)."""
        return bool(self.links) and all(self.links.values())


class Pbx(Protocol):
    """What the call engine needs from a PBX."""

    def health(self) -> PbxHealth:
        """The connections this adapter needs right now (no I/O: the cached link states)."""
        ...

    async def start(self, sink: PbxEventSink) -> None:
        """Connect and start reporting events to ``sink``."""
        ...

    async def aclose(self) -> None: ...

    async def originate(self, request: OriginateRequest) -> None:
        """Place the call; return once the PBX accepted it (answer comes as an event)."""
        ...

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        """Hang up every leg voicedock holds for the call. Idempotent."""
        ...

    async def transfer(self, call_id: str, target: TransferTarget) -> None: ...

    async def live_call_ids(self) -> set[str]:
        """Calls the PBX still has (for reconciliation after a reconnect or restart)."""
        ...


class InboundHandler(Protocol):
    async def __call__(self, call: InboundCall, /) -> str | None:
        """Accept an inbound call: return our call id, or ``None`` to reject it."""
        ...


@runtime_checkable
class InboundPbx(Protocol):
    """A ``Pbx`` that offers the calls it receives to voicedock (Asterisk, FreeSWITCH)."""

    def set_inbound_handler(self, handler: InboundHandler) -> None:
        """Who gives an inbound call our call id (the engine); without one, it is rejected."""
        ...


@runtime_checkable
class MediaPbx(Protocol):
    """A ``Pbx`` that can carry a call's audio to voicedock (Asterisk, FreeSWITCH).

    ``call_media`` is entered once the call is answered; it yields the connected media and, on
    exit, releases every media leg and bridge it created (the call itself stays up: hanging up
    is the ``Pbx``'s ``hangup``).
    """

    def call_media(
        self, call_id: str, *, media_format: str = "ulaw"
    ) -> AbstractAsyncContextManager[CallMedia]: ...


# DTMF digits a PBX may be asked to play on a call (RFC 4733 events 0-15) and the pauses
# between them both PBXs play the same way (``w`` half a second, ``W`` a second: Asterisk's
# ``ast_dtmf_stream`` behind ARI's ``/channels/{id}/dtmf``, FreeSWITCH's ``uuid_send_dtmf``),
# at most 32 at once, one key at least.
DTMF_PAUSES = frozenset("wW")
_DTMF_KEYS = frozenset("0123456789ABCD*#")
DTMF_PATTERN = "^[0-9A-Da-d*#wW]{1,32}$"  # as the model is offered it (the keys in any case)


def require_dtmf_digits(digits: str) -> str:
    """``digits`` when they are 1-32 of ``0-9 A-D * #`` (keys, upper-cased) and the pauses
    ``w`` (0.5 s) and ``W`` (1 s), a key among them, else ``ValueError``."""
    keys = "".join(c if c in DTMF_PAUSES else c.upper() for c in digits)
    played = set(keys)
    if not (len(keys) <= 32 and played & _DTMF_KEYS and played <= _DTMF_KEYS | DTMF_PAUSES):
        raise ValueError(
            "DTMF digits must be 1-32 of 0-9, A-D, * and #, with w (a pause of 0.5 s) and "
            "W (1 s) between them"
        )
    return keys


@runtime_checkable
class DtmfPbx(Protocol):
    """A ``Pbx`` that can play DTMF digits (RFC 4733 events) to the far party of a call."""

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        """Play ``digits`` (see ``require_dtmf_digits``) on the call's leg; ``PbxError``
        when the call is gone or the PBX refuses."""
        ...


@runtime_checkable
class RehearsalPbx(Protocol):
    """A ``Pbx`` that places test calls inside itself: no trunk, no caller number, nothing
    dialled outside the PBX (test suites, ``calls/rehearsal``)."""

    async def originate_test_call(self, leg_id: str, token: str) -> None:
        """A call between two channels of the PBX: the simulated caller's leg ``leg_id`` (a
        call id) is reported as an outbound call's (ANSWERED once the other side answered,
        HANGUP) and its audio opened with ``call_media``; the other side reaches voicedock
        as an inbound call to ``test-<token>`` (``token``: digits), as a caller to one of the
        organizations' numbers would."""
        ...


TEST_CALL_PREFIX = "test-"  # what an inbound test call is "to": test-<token>


class MediaEndpoint(Protocol):
    """What voicedock's ``/media`` route hands each websocket to when a PBX's media legs dial
    voicedock: the PBX's own acceptor, which gives a connection to the call it proves to be
    for and refuses any other."""

    async def handle(self, request: web.Request) -> web.StreamResponse: ...


@runtime_checkable
class MediaAcceptingPbx(Protocol):
    """A ``Pbx`` whose media legs can dial voicedock (Asterisk's ``media_connection =
    "client"``)."""

    def media_endpoint(self) -> MediaEndpoint | None:
        """Where its media legs arrive, for voicedock to serve on ``/media`` (the same each
        time); ``None`` when voicedock dials them instead."""
        ...


class InboundAway(enum.Enum):
    """Where a draining node's PBX connection sends a new inbound call (docs/nodes.md)."""

    ELSEWHERE = "elsewhere"  # to another live node (Asterisk: back to voicedock-node)
    REJECTED = "rejected"  # no node is left to take it: rejected at the PBX

    @property
    def done(self) -> str:
        """What became of the caller, for the log."""
        if self is InboundAway.ELSEWHERE:
            return "left to another live node: this node drains"
        return "rejected: this node drains, and no other node takes calls"


@runtime_checkable
class DrainingPbx(Protocol):
    """A ``Pbx`` whose node may drain: it then answers no new inbound call, but sends it to
    another live node or rejects it (``InboundAway``); ``None``: it answers them again."""

    def turn_inbound_away(self, away: InboundAway | None) -> None: ...


@runtime_checkable
class LiveNodesPbx(Protocol):
    """A ``Pbx`` that shares its inbound calls among the live nodes (Asterisk: each node's ARI
    application, ``pbx/asterisk/node_apps``): told at each lease renewal which nodes live and
    take inbound calls (``node_ids``), and which live ones drain (``draining``)."""

    async def set_live_nodes(self, node_ids: list[str], draining: Collection[str] = ()) -> None: ...


@runtime_checkable
class LeftoverPbx(Protocol):
    """A ``Pbx`` that can clear what a previous run of voicedock left of its calls (after a
    crash or ``kill -9`` the adapter's registry is empty, so ``hangup`` cannot name the legs)."""

    async def hang_up_leftovers(self, calls: Mapping[str, str | None]) -> set[str]:
        """Hang up every leg (and bridge) of these calls, given as call id → the PBX's id of
        the remote leg when stored; return the call ids of which something is still there."""
        ...


@runtime_checkable
class RoutingPbx(Protocol):
    """A ``Pbx`` made of several servers (``pbx/several``): each call lives on one of them."""

    def locate(self, call_id: str, pbx: str | None) -> None:
        """The call lives on the server named ``pbx`` (a call of a previous run, stored with
        it); ``None``: not known (its commands go to every server)."""
        ...

    def call_health(self, call_id: str) -> PbxHealth:
        """The health of the server carrying the call (of them all when not known)."""
        ...


@runtime_checkable
class ResumablePbx(Protocol):
    """A ``Pbx`` that can take over a call a previous run of voicedock left live, so that the
    call goes on (``calls/recovery``) instead of being hung up."""

    async def adopt_call(self, call_id: str, remote_ref: str | None) -> bool:
        """Make the answered call this run's own if its remote leg (the PBX's id of it when
        stored, else the call id) is still up and waiting for voicedock: its events reported,
        ``hangup`` and ``call_media`` working as for a call placed by this run, and the media
        legs and bridges the previous run left cleared (``call_media`` opens new ones).
        ``False`` (nothing adopted) when the remote leg is gone or not voicedock's any more;
        ``PbxError`` when the PBX cannot tell. Either way the caller hangs up what is left."""
        ...


Speech = tuple[bytes, int]  # 16-bit mono PCM, sample rate
Decision = Literal["accept", "decline"]  # the agent's answer to a warm transfer's briefing


class WarmDialogue(Protocol):
    """The speech of a warm transfer, handed to an adapter from above (``calls/transfers``).

    The adapter holds the caller, dials the agent, plays audio on the agent's leg, reads its
    digits and media frames, and bridges or returns the caller; what the agent hears and what
    their spoken answer means are this protocol's. Without one, an adapter briefs with a beep
    and only a digit decides.
    """

    def briefing_text(self, briefing: str | None, *, voice_decision: bool) -> str:
        """What the agent hears: ``briefing`` (the call's, ``None`` if there is none) and the
        prompt to press 1 or 2 (with ``voice_decision``, also to say yes or no)."""
        ...

    def synthesize(self, text: str) -> Awaitable[Speech]:
        """``text`` as speech; a ``ProviderError`` or ``TimeoutError`` means "no voice"."""
        ...

    def listen(
        self, frames: AsyncIterable[bytes], media_format: AudioFormat
    ) -> Awaitable[Decision | None]:
        """The first utterance in the agent leg's ``frames`` (wire format) that means a
        decision; ``None`` when the frames end first."""
        ...
