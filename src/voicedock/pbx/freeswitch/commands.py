"""The FreeSWITCH API commands voicedock sends (originate, uuid_*, audio streams), built safely.

Everything here ends up as the argument of ``api``/``bgapi``, where FreeSWITCH reads a lot of
structure into plain text (sources: ``signalwire/freeswitch``):

* ``mod_commands.c`` ``originate`` splits its argument on spaces with
  ``switch_separate_string``; ``cleanup_separated_string`` (``src/switch_utils.c``) then drops
  single quotes and turns ``\\s`` into a space, ``\\'`` / ``\\"`` / ``\\\\`` into the character.
* ``switch_event_create_brackets`` (``src/switch_event.c``) reads ``{a=1,b=2}`` (all legs),
  ``[...]`` (one leg) and ``<...>``; variables are split on ``,`` (``\\,`` keeps a comma) unless
  the block starts with ``^^<delim>``; ``|`` and ``:`` separate legs / failover groups in the
  dial string; ``&app(args)`` names the application.
* ``switch_api_execute`` expands ``${var}`` / ``${api(...)}`` and ``$${global}`` in the whole
  command when API expansion is on, so a ``$`` in user text could run arbitrary API commands.
* A ``\\n`` ends the ESL command itself (see ``freeswitch.esl.wire``).

Policy, per field (refuse unless the value is cosmetic):

* ``origination_uuid``, uuids of other commands: we generate them (``uuid4()`` per leg, never
  the call id), so anything but a canonical lowercase UUID is a bug and is **refused**.
* Our call id (the ``voicedock_call_id`` channel variable): exactly the shapes of
  ``domain/ids.py`` (``is_call_id``), else **refused**.
* Caller number and destination: canonical E.164 (``+`` then 7–15 ASCII digits) or an
  explicitly configured internal target, else **refused** (the API answers 400 before this).
* Gateway, context, dialplan: configuration tokens ``[A-Za-z0-9_.-]``; anything else **refused**.
* Caller name: display text. Letters, ASCII digits and `` .,-_`` are allowed; ``,`` is
  **escaped** as ``\\,`` and a space as ``\\s`` (both survive the space split and are decoded by
  the bracket parser). Every other character (quotes, ``$``, braces, brackets, ``<>``, ``|``,
  ``&``, ``\\``, ``^``, ``=``, control characters) is **refused**.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Literal

from voicedock.domain.ids import is_call_id
from voicedock.pbx.base import require_dtmf_digits
from voicedock.pbx.freeswitch.esl.wire import UnsafeWireValue


class UnsafeCommandValue(UnsafeWireValue):
    """A value would change the structure of a FreeSWITCH command or dial string."""


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII)
_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}", re.ASCII)
_INTERNAL_TARGET = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+\-]{0,63}", re.ASCII)
# The policy's other internal forms (``calls/policy.py``): a queue and a SIP URI. ``:`` and ``@``
# are no separators in a dial string (legs split on ``,``, ``|`` and ``:_:``), nor in the
# ``loopback/<exten>/<context>/<dialplan>`` data, which mod_loopback splits on ``/`` only.
_QUEUE_TARGET = re.compile(r"queue:[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", re.ASCII)
_SIP_TARGET = re.compile(
    r"sip:[A-Za-z0-9][A-Za-z0-9_.+\-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}\.){0,8}"
    r"[A-Za-z0-9\-]{1,63}",
    re.ASCII,
)
_CAUSE = re.compile(r"[A-Z][A-Z_]{1,40}", re.ASCII)
_SOUND_PATH = re.compile(r"/[A-Za-z0-9_./\-]{1,250}", re.ASCII)
_WS_URL = re.compile(r"wss?://[A-Za-z0-9\-._~:/?#\[\]@!&()*+,;=%]{1,500}", re.ASCII)
# The channel variable naming the voicedock call a channel belongs to (restart recovery).
CALL_ID_VARIABLE = "voicedock_call_id"

# Q.850 cause names voicedock may send with uuid_kill (switch_channel_cause2str names).
HANGUP_CAUSES = frozenset(
    {
        "NORMAL_CLEARING",
        "USER_BUSY",
        "NO_ANSWER",
        "CALL_REJECTED",
        "NORMAL_TEMPORARY_FAILURE",
        "ORIGINATOR_CANCEL",
        "MANAGER_REQUEST",
        "SYSTEM_SHUTDOWN",
        "RECOVERY_ON_TIMER_EXPIRE",
    }
)

MixType = Literal["mono", "mixed", "stereo"]


def is_uuid(value: object) -> bool:
    """A canonical lowercase UUID (a FreeSWITCH channel uuid)."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def require_uuid(value: str, what: str = "uuid") -> str:
    if not is_uuid(value):
        raise UnsafeCommandValue(f"{what} must be a canonical lowercase UUID")
    return value


def require_call_id(value: str, what: str = "call id") -> str:
    if not is_call_id(value):
        raise UnsafeCommandValue(f"{what} must be a voicedock call id")
    return value


def require_e164(value: str, what: str = "number") -> str:
    if not isinstance(value, str) or not _E164.fullmatch(value):
        raise UnsafeCommandValue(f"{what} must be E.164 (+ and 7-15 ASCII digits)")
    return value


def require_token(value: str, what: str) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise UnsafeCommandValue(f"{what} must match [A-Za-z0-9_.-] (max 64)")
    return value


def require_destination(value: str, internal_targets: Collection[str] = ()) -> str:
    """E.164, or exactly one of the configured internal targets (which must be tokens too)."""
    if isinstance(value, str) and _E164.fullmatch(value):
        return value
    if isinstance(value, str) and value in internal_targets:
        return require_internal_target(value)
    raise UnsafeCommandValue("destination must be E.164 or a configured internal target")


def require_internal_target(value: str) -> str:
    """An internal target in one of the policy's forms: a name (``sales``, ``agent-12``),
    ``queue:<name>`` or ``sip:<user>@<host>``; never a separator (``/``, ``,``, ``|``, spaces,
    ``{``, ``$``...) that would change a dial string or a command line."""
    if isinstance(value, str) and any(
        form.fullmatch(value) for form in (_INTERNAL_TARGET, _QUEUE_TARGET, _SIP_TARGET)
    ):
        return value
    raise UnsafeCommandValue("internal target must be a name, queue:<name> or sip:<user>@<host>")


def build_originate(
    *,
    call_uuid: str,
    destination: str,
    caller_id_number: str,
    gateway: str,
    call_id: str | None = None,
    timeout_seconds: int = 30,
    internal_targets: Collection[str] = (),
) -> str:
    """``originate {vars}sofia/gateway/<gw>/<dest> &park()`` with every part validated.

    ``&park()`` keeps the answered leg idle until voicedock attaches media or bridges it;
    ``send_silence_when_idle=-1`` makes park send silence (``switch_ivr_park`` reads it once,
    when it starts), so the RTP toward the party never pauses between our utterances: after a
    pause the party's side lost the 40 ms after the first packet of each utterance (measured on
    the lab FreeSWITCH, ``bench/fs_playback.py``). ``call_uuid`` is the new channel's uuid;
    ``call_id`` (the voicedock call the leg belongs to, if any) goes on the channel as
    ``voicedock_call_id``.
    """
    if not isinstance(timeout_seconds, int) or not 1 <= timeout_seconds <= 300:
        raise UnsafeCommandValue("timeout_seconds must be an integer in 1..300")
    variables = [
        f"origination_uuid={require_uuid(call_uuid, 'call_uuid')}",
        f"origination_caller_id_number={require_e164(caller_id_number, 'caller_id_number')}",
    ]
    if call_id is not None:
        variables.append(f"{CALL_ID_VARIABLE}={require_call_id(call_id)}")
    variables.append(f"originate_timeout={timeout_seconds}")
    variables.append("send_silence_when_idle=-1")
    dest = require_destination(destination, internal_targets)
    dial = f"sofia/gateway/{require_token(gateway, 'gateway')}/{dest}"
    return "originate {" + ",".join(variables) + "}" + dial + " &park()"


def build_originate_loopback(
    *,
    call_uuid: str,
    target: str,
    context: str,
    caller_id_number: str | None = None,
    timeout_seconds: int = 30,
    dialplan: str = "XML",
) -> str:
    """``originate {vars}loopback/<target>/<context>/<dialplan> &park()``: a leg into our own
    dialplan (mod_loopback), so an internal target's extension dials the agent.

    mod_loopback (``channel_outgoing_channel``) splits the data on ``/`` into extension, context
    and dialplan and makes two channels: ``loopback/<target>-a`` (this originate's leg: it gets
    ``origination_uuid``, its events, its DTMF) and ``loopback/<target>-b`` (a new uuid, it runs
    the extension and inherits the ``{...}`` variables). The ``-a`` leg answers when the ``-b``
    leg does, i.e. when the extension's ``bridge`` is answered. ``voicedock_warm=true`` tells
    the extension it dials a warm agent (``docs/freeswitch.md``).
    """
    if not isinstance(timeout_seconds, int) or not 1 <= timeout_seconds <= 300:
        raise UnsafeCommandValue("timeout_seconds must be an integer in 1..300")
    variables = [f"origination_uuid={require_uuid(call_uuid, 'call_uuid')}"]
    if caller_id_number is not None:
        number = require_e164(caller_id_number, "caller_id_number")
        variables.append(f"origination_caller_id_number={number}")
    variables += [f"originate_timeout={timeout_seconds}", "voicedock_warm=true"]
    dial = "/".join(
        (
            "loopback",
            require_internal_target(target),
            require_token(context, "context"),
            require_token(dialplan, "dialplan"),
        )
    )
    return "originate {" + ",".join(variables) + "}" + dial + " &park()"


_TEST_DID = re.compile(r"test-[0-9]{1,32}", re.ASCII)


def build_originate_test_call(*, call_uuid: str, did: str, timeout_seconds: int = 30) -> str:
    """``originate {vars}loopback/park/default/inline &park()``: a test call inside FreeSWITCH
    (mod_loopback, no gateway). Its ``-a`` leg (``call_uuid``) is the simulated caller's and
    parks once answered; its ``-b`` leg runs ``park`` (the inline dialplan) with the
    ``{...}`` variables it inherits, ``voicedock_did`` among them (``test-<digits>``): its
    ``CHANNEL_PARK`` is an inbound call to that "number", answered as any."""
    if not isinstance(timeout_seconds, int) or not 1 <= timeout_seconds <= 300:
        raise UnsafeCommandValue("timeout_seconds must be an integer in 1..300")
    if not _TEST_DID.fullmatch(did):
        raise UnsafeCommandValue("a test call's number is test-<digits>")
    variables = [
        f"origination_uuid={require_uuid(call_uuid, 'call_uuid')}",
        f"originate_timeout={timeout_seconds}",
        f"voicedock_did={did}",
        "send_silence_when_idle=-1",
    ]
    return "originate {" + ",".join(variables) + "}loopback/park/default/inline &park()"


def build_uuid_kill(uuid: str, cause: str = "NORMAL_CLEARING") -> str:
    if not _CAUSE.fullmatch(cause) or cause not in HANGUP_CAUSES:
        raise UnsafeCommandValue("unknown hangup cause")
    return f"uuid_kill {require_uuid(uuid)} {cause}"


def build_uuid_send_dtmf(uuid: str, digits: str) -> str:
    """``uuid_send_dtmf <uuid> <digits>``: RFC 2833/4733 digits on the channel."""
    try:
        checked = require_dtmf_digits(digits)
    except ValueError as exc:
        raise UnsafeCommandValue(str(exc)) from None
    return f"uuid_send_dtmf {require_uuid(uuid)} {checked}"


def build_uuid_transfer(
    uuid: str,
    destination: str,
    *,
    context: str = "default",
    dialplan: str = "XML",
    internal_targets: Collection[str] = (),
    both_legs: bool = False,
) -> str:
    """``uuid_transfer <uuid> [-both] <dest> <dialplan> <context>`` (dialplan transfer)."""
    parts = ["uuid_transfer", require_uuid(uuid)]
    if both_legs:
        parts.append("-both")
    parts += [
        require_destination(destination, internal_targets),
        require_token(dialplan, "dialplan"),
        require_token(context, "context"),
    ]
    return " ".join(parts)


def build_uuid_bridge(uuid_a: str, uuid_b: str) -> str:
    return f"uuid_bridge {require_uuid(uuid_a, 'uuid_a')} {require_uuid(uuid_b, 'uuid_b')}"


def _require_sound_path(path: str) -> str:
    """Only absolute paths, never ``app::args`` forms or ``..``."""
    if not _SOUND_PATH.fullmatch(path) or ".." in path.split("/"):
        raise UnsafeCommandValue("sound path must be absolute and match [A-Za-z0-9_./-]")
    return path


def build_uuid_broadcast(
    uuid: str, path: str, leg: Literal["aleg", "bleg", "both"] = "aleg"
) -> str:
    """Play a file on the channel (``switch_ivr_broadcast``: it first waits 5 frames)."""
    _require_sound_path(path)
    if leg not in ("aleg", "bleg", "both"):
        raise UnsafeCommandValue("leg must be aleg, bleg or both")
    return f"uuid_broadcast {require_uuid(uuid)} {path} {leg}"


def build_uuid_broadcast_tone(
    uuid: str, *, on_ms: int = 400, off_ms: int = 200, hz: int = 880, repeats: int = 2
) -> str:
    """``uuid_broadcast <uuid> tone_stream://L=<n>;%(<on>,<off>,<hz>) aleg``: a beep from
    numbers only (no file, no text), the cue the agent gets when a briefing has no voice."""
    values = (on_ms, off_ms, hz, repeats)
    if not all(isinstance(v, int) and 0 < v <= 10_000 for v in values):
        raise UnsafeCommandValue("tone values must be integers in 1..10000")
    tone = f"tone_stream://L={repeats};%({on_ms},{off_ms},{hz})"
    return f"uuid_broadcast {require_uuid(uuid)} {tone} aleg"


def build_queued_playback(uuid: str, path: str) -> tuple[str, dict[str, str]]:
    """``sendmsg <uuid>`` that queues ``playback <path>`` on the channel: ``(uuid, headers)``.

    What ``uuid_broadcast <uuid> <path> aleg`` queues (``switch_ivr_broadcast``), without its
    ``lead-frames: 5``: ``switch_ivr_parse_event`` reads that many frames before each file, so
    files queued back to back are heard with 100 ms of silence between them. ``event-lock``
    keeps a queued file from starting inside the one playing (``parse_all_events`` runs during
    playback); ``uuid_break <uuid> all`` drops the queue as it does a broadcast's.
    """
    headers = {
        "call-command": "execute",
        "execute-app-name": "playback",
        "execute-app-arg": _require_sound_path(path),
        "event-lock": "true",
    }
    return require_uuid(uuid), headers


def build_uuid_break(uuid: str, *, all_queued: bool = True) -> str:
    """Stop the current playback (barge-in); ``all`` also drops queued files."""
    return f"uuid_break {require_uuid(uuid)}" + (" all" if all_queued else "")


def build_audio_stream_start(
    uuid: str,
    url: str,
    *,
    mix: MixType = "mono",
    sample_rate: int = 8000,
    metadata: str | None = None,
) -> str:
    """``uuid_audio_stream <uuid> start <url> <mix> <rate> [metadata]`` (mod_audio_stream).

    The metadata is the rest of the line (spaces allowed) but goes through FreeSWITCH's
    separator, which strips single quotes and backslash escapes, so both are refused.
    """
    if not _WS_URL.fullmatch(url) or "$" in url or "'" in url:
        raise UnsafeCommandValue("url must be a ws:// or wss:// URL without spaces or quotes")
    if mix not in ("mono", "mixed", "stereo"):
        raise UnsafeCommandValue("mix must be mono, mixed or stereo")
    if sample_rate <= 0 or sample_rate % 8000 or sample_rate > 64000:
        raise UnsafeCommandValue("sample_rate must be a multiple of 8000 up to 64000")
    command = f"uuid_audio_stream {require_uuid(uuid)} start {url} {mix} {sample_rate // 1000}k"
    if metadata is not None:
        bad = set("'\\$\r\n\x00") & set(metadata)
        if bad or not metadata.strip():
            raise UnsafeCommandValue("metadata must be non-empty, without quotes, \\ or $")
        command += f" {metadata}"
    return command


def build_audio_stream_stop(uuid: str) -> str:
    return f"uuid_audio_stream {require_uuid(uuid)} stop"


def build_uuid_answer(uuid: str) -> str:
    return f"uuid_answer {require_uuid(uuid)}"


def build_uuid_getvar(uuid: str, name: str) -> str:
    """``uuid_getvar <uuid> <name>``: FreeSWITCH answers the value, or ``_undef_``."""
    return f"uuid_getvar {require_uuid(uuid)} {require_token(name, 'name')}"


def build_uuid_exists(uuid: str) -> str:
    """``uuid_exists <uuid>``: ``true`` or ``false``, asked of the session table itself (not the
    core database that ``show channels`` reads, which lags a new channel by up to ~0.5 s)."""
    return f"uuid_exists {require_uuid(uuid)}"


def build_uuid_set_call_id(uuid: str, call_id: str) -> str:
    """``uuid_setvar <uuid> voicedock_call_id <call id>``: an inbound id holds a ``+``, which
    ``build_uuid_setvar``'s token rule refuses; ``require_call_id`` allows ``[A-Za-z0-9_+-]``."""
    return f"uuid_setvar {require_uuid(uuid)} {CALL_ID_VARIABLE} {require_call_id(call_id)}"


def build_uuid_setvar(uuid: str, name: str, value: str) -> str:
    """``uuid_setvar <uuid> <name> <value>``: both are configuration tokens, never user text
    (``uuid_setvar`` takes the rest of the line as the value, so a space would be kept)."""
    return f"uuid_setvar {require_uuid(uuid)} {require_token(name, 'name')} " + require_token(
        value, "value"
    )
