"""An in-process fake FreeSWITCH: the inbound Event Socket and a mod_audio_stream-like client.

The byte layouts copy ``mod_event_socket.c`` (``signalwire/freeswitch``): the greeting
``Content-Type: auth/request``; ``command/reply`` with ``Reply-Text``; ``api/response`` with
``Content-Type`` before ``Content-Length`` (``api_exec``); events with ``Content-Length`` first
(``listener_run``); ``text/disconnect-notice`` (``send_disconnect``). Outcomes of ``originate``
follow ``mod_commands.c`` (``+OK <uuid>`` / ``-ERR <CAUSE>``) and the Q.850 names FreeSWITCH
maps SIP statuses to (``sofia_glue``/``switch_channel`` cause tables).

Loopback only, port 0. Use ``async with FakeFreeswitch(password=...) as fs`` and ``fs.port``.
A destination in ``ringing`` rings until the test calls ``answer(uuid)`` (or its
``originate_timeout`` runs out: ``NO_ANSWER``); ``originates`` are the variable blocks received.
"""

from __future__ import annotations

import asyncio
import time
import uuid as uuid_mod
from collections.abc import Mapping
from dataclasses import dataclass, field

from pbx.freeswitch.fake_audio_stream import FakeAudioStreamClient, GiveUp
from pbx.freeswitch.fake_esl_wire import (
    CORE_UUID,
    ORIGINATE_COMMAND,
    OUTCOMES,
    STATUS_TEXT,
    FakeChannel,
    api_response,
    command_reply,
    disconnect_notice,
    json_event,
    packet,
    show_channels_json,
    split_unescaped,
)
from pbx.freeswitch.fake_playout import ChannelPlayout
from pbx.freeswitch.recorder import PbxEventRecorder
from voicedock.pbx.causes import FREESWITCH_CAUSES as Q850

__all__ = ["FakeAudioStreamClient", "FakeFreeswitch", "PbxEventRecorder"]


@dataclass
class _Session:
    writer: asyncio.StreamWriter
    events: set[str] = field(default_factory=set)
    authed: bool = False


class FakeFreeswitch:
    """ESL server double. ``destinations`` maps a number to a key of ``OUTCOMES``."""

    def __init__(self, password: str = "fake-esl-secret", *, ring_delay: float = 0.01) -> None:
        self.password = password
        self.ring_delay = ring_delay
        self.destinations: dict[str, str] = {}
        self.down_gateways: set[str] = set()  # originate answers -ERR GATEWAY_DOWN, no channel
        self.channels: dict[str, FakeChannel] = {}
        self.commands: list[str] = []  # every command line received, in order
        self.frozen = False  # half-open simulation: read but never answer
        # api commands at which every connection drops once (the link breaks mid-command)
        self.drop_at: set[str] = set()
        self._held: dict[str, asyncio.Event] = {}  # api command -> set when it may be answered
        self.audio_streams: list[FakeAudioStreamClient] = []
        self.streams_by_uuid: dict[str, FakeAudioStreamClient] = {}
        self.stream_frames = 5  # silent caller frames sent when a stream starts
        # How the module gives up on the next streams started, one per start (then none).
        self.stream_give_ups: list[GiveUp] = []
        self.audio_stream_loaded = True  # False: mod_audio_stream missing, its command unknown
        self.broadcasts: list[tuple[str, str]] = []  # (uuid, file) per uuid_broadcast
        self.playbacks: list[tuple[str, str]] = []  # (uuid, file) per sendmsg playback
        self.playouts: dict[str, ChannelPlayout] = {}  # what each channel played, by the clock
        self.breaks: list[str] = []  # uuids of uuid_break
        self.booted = time.monotonic() - 187.0  # "UP ... 3 minutes, 7 seconds"
        self.echo_destinations: set[str] = set()  # parties that send back what they hear
        self.hang_up_after: dict[str, float] = {}  # number -> seconds it stays after answering
        self.ringing: set[str] = set()  # numbers that ring until answer(uuid) is called
        self.create_delay = 0.0  # seconds between receiving an originate and its channel existing
        self.originates: list[dict[str, str]] = []  # the {...} variables of every originate
        # destination -> the digit its party presses once answered (a warm agent who accepts
        # with "1" or declines with "2"), after ``agent_press_delay`` seconds
        self.agent_presses: dict[str, str] = {}
        self.agent_press_delay = 0.05
        self.bridged: dict[str, str] = {}  # uuid_bridge pairs, both ways
        self.late_park_delay = 0.05  # CHANNEL_PARK of an answered originate's &park()
        # CHANNEL_ANSWER -> the originate job's end (on a loaded lab FreeSWITCH it can be late)
        self.job_after_answer = 0.0
        self.bridge_delay = 0.02  # uuid_bridge's +OK to its CHANNEL_BRIDGE (20-60 ms on the lab)
        self.loopback_dials: list[str] = []  # "<exten>/<context>/<dialplan>" per loopback leg
        self._answer: dict[str, asyncio.Event] = {}  # ringing channel uuid -> answer/hangup
        self.connections_accepted = 0
        self._sessions: list[_Session] = []
        self._server: asyncio.Server | None = None
        self._tg = asyncio.TaskGroup()
        self._sequence = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> FakeFreeswitch:
        await self._tg.__aenter__()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        self.drop_connections()
        for stream in self.audio_streams:
            await stream.aclose()
        for task in list(self._tg._tasks):
            task.cancel()
        await self._tg.__aexit__(None, None, None)
        await server.wait_closed()

    # --- fault injection --------------------------------------------------------------------

    def drop_connections(self) -> None:
        """Close every client socket abruptly (FreeSWITCH crashed / network cut)."""
        for session in self._sessions:
            session.writer.close()
        self._sessions.clear()

    def send_disconnect_notice(self) -> None:
        for session in self._sessions:
            session.writer.write(disconnect_notice())
            session.writer.close()
        self._sessions.clear()

    def emit(self, headers: Mapping[str, str], body: str | None = None) -> None:
        """Send an event to every connection subscribed to its name (or ALL)."""
        if self.frozen:
            return
        self._sequence += 1
        full = {
            "Core-UUID": CORE_UUID,
            "FreeSWITCH-Hostname": "fake-fs",
            "Event-Date-Timestamp": str(int(time.time() * 1_000_000)),
            "Event-Sequence": str(self._sequence),
            **headers,
        }
        name = full.get("Event-Name", "")
        for session in self._sessions:
            if session.authed and (
                {name, "ALL"} & session.events or (name == "CUSTOM" and "CUSTOM" in session.events)
            ):
                session.writer.write(json_event(full, body))

    def hold(self, command: str) -> asyncio.Event:
        """``api <command>`` is answered only once the returned event is set (a FreeSWITCH
        busy starting); the socket's later commands wait behind it, as on the real listener."""
        event = self._held[command] = asyncio.Event()
        return event

    def remote_hangup(self, channel_uuid: str, cause: str = "NORMAL_CLEARING") -> None:
        """The far end hangs up."""
        self._hangup(channel_uuid, cause, 200)

    def inbound_call(
        self,
        destination: str,
        caller: str = "+15550001111",
        variables: Mapping[str, str] | None = None,
    ) -> str:
        """A call arrives and the dialplan parks it (``dialplan/freeswitch``); returns its uuid.
        ``variables``: the channel's variables its park event carries (``sip_h_Identity``)."""
        channel = FakeChannel(str(uuid_mod.uuid4()), destination, caller, {}, direction="inbound")
        self.channels[channel.uuid] = channel
        self.emit(self._channel_headers(channel, "CHANNEL_CREATE"))
        park = self._channel_headers(channel, "CHANNEL_PARK")
        park.update({f"variable_{name}": value for name, value in (variables or {}).items()})
        self.emit(park)
        return channel.uuid

    def rings(self, channel_uuid: str) -> bool:
        """The channel of a ``ringing`` destination is waiting for ``answer``."""
        return channel_uuid in self._answer

    def answer(self, channel_uuid: str) -> None:
        """The called party (a ``ringing`` destination) picks up."""
        self._answer[channel_uuid].set()

    def uuid_of(self, call_id: str) -> str:
        """The ``origination_uuid`` of the (first) originate carrying ``call_id``."""
        for variables in self.originates:
            if variables.get("voicedock_call_id") == call_id:
                return variables["origination_uuid"]
        raise KeyError(f"no originate carried {call_id}")

    def channel_of_call(self, call_id: str) -> FakeChannel | None:
        """The live channel whose ``voicedock_call_id`` variable names ``call_id``."""
        return next(
            (c for c in self.channels.values() if c.variables.get("voicedock_call_id") == call_id),
            None,
        )

    def press_digit(self, channel_uuid: str, digit: str) -> None:
        channel = self.channels[channel_uuid]
        self.emit(self._channel_headers(channel, "DTMF") | {"DTMF-Digit": digit})

    # --- protocol ---------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self.booted:  # still starting after ``restart(down_for=...)``
            writer.close()
            return
        self.connections_accepted += 1
        session = _Session(writer)
        self._sessions.append(session)
        writer.write(packet({"Content-Type": "auth/request"}))
        try:
            while True:
                block = await reader.readuntil(b"\n\n")
                line, *header_lines = block.decode().strip("\n").split("\n")
                headers = dict(h.split(": ", 1) for h in header_lines if ": " in h)
                self.commands.append(line)
                if self.frozen:
                    continue
                held = self._held.get(line.removeprefix("api "))
                if held is not None:
                    await held.wait()  # this socket's later commands wait behind it, in order
                if not self._dispatch(session, line, headers):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            if session in self._sessions:
                self._sessions.remove(session)
            writer.close()

    def _dispatch(self, session: _Session, line: str, headers: dict[str, str]) -> bool:
        """Answer one command; ``False`` closes the socket."""
        write = session.writer.write
        verb, _, rest = line.partition(" ")
        if not session.authed:
            if verb == "auth" and rest == self.password:
                session.authed = True
                write(command_reply("+OK accepted"))
                return True
            write(command_reply("-ERR invalid"))
            write(disconnect_notice())
            return False
        if verb == "event":
            fmt, _, names = rest.partition(" ")
            session.events.update(names.split())
            write(command_reply(f"+OK event listener enabled {fmt}"))
        elif verb == "noevents":
            session.events.clear()
            write(command_reply("+OK no longer listening for events"))
        elif verb == "filter":
            header, _, value = rest.partition(" ")
            write(command_reply(f"+OK filter added. [{header}]=[{value}]"))
        elif verb == "exit":
            write(command_reply("+OK bye"))
            write(disconnect_notice())
            return False
        elif verb == "api":
            if rest in self.drop_at:
                self.drop_at.discard(rest)
                self.drop_connections()
                return False
            if rest.startswith("originate "):  # api originate blocks until the outcome
                self._tg.create_task(self._blocking_originate(session, rest))
            else:
                write(api_response(self._api(rest)))
        elif verb == "sendmsg":
            write(command_reply(self._sendmsg(rest, headers)))
        elif verb == "bgapi":
            job = headers.get("Job-UUID") or str(uuid_mod.uuid4())
            write(command_reply(f"+OK Job-UUID: {job}", **{"Job-UUID": job}))
            self._tg.create_task(self._background_job(job, rest))
        else:
            write(command_reply("-ERR command not found"))
        return True

    async def _blocking_originate(self, session: _Session, command: str) -> None:
        result = await self._originate(command)
        session.writer.write(api_response(result))

    async def _background_job(self, job_uuid: str, command: str) -> None:
        await asyncio.sleep(0)  # the reply goes out first, as with the real listener
        if command.startswith("originate "):
            result = await self._originate(command)
        else:
            result = self._api(command)
        name, _, arg = command.partition(" ")
        self.emit(
            {
                "Event-Name": "BACKGROUND_JOB",
                "Job-UUID": job_uuid,
                "Job-Command": name,
                "Job-Command-Arg": arg,
            },
            result,
        )

    def _api(self, command: str) -> str:
        name, _, arg = command.partition(" ")
        args = arg.split()
        if command == "status":
            # To the microsecond, as FreeSWITCH counts it (a restart may follow a short life).
            up = round((time.monotonic() - self.booted) * 1_000_000)
            seconds, micro = divmod(up, 1_000_000)
            return STATUS_TEXT.format(
                minutes=seconds // 60,
                seconds=seconds % 60,
                milliseconds=micro // 1000,
                microseconds=micro % 1000,
            )
        if command == "show channels as json":
            return self._show_channels()
        if name == "uuid_kill" and args:
            if args[0] not in self.channels:
                return "-ERR No such channel!\n"
            # We sent the BYE: FreeSWITCH sets no sip_term_status on the killed leg.
            self._hangup(args[0], args[1] if len(args) > 1 else "NORMAL_CLEARING", None)
            return "+OK\n"
        if name == "uuid_answer" and args:
            channel = self.channels.get(args[0])
            if channel is None:
                return "-ERROR\n"  # mod_commands' uuid_answer says no more
            if not channel.answered:
                channel.answered = True
                self.emit(self._channel_headers(channel, "CHANNEL_ANSWER"))
            return "+OK\n"
        if name == "uuid_exists" and len(args) == 1:
            return "true" if args[0] in self.channels else "false"
        if name == "uuid_getvar" and len(args) == 2:
            if args[0] not in self.channels:
                return "-ERR No such channel!\n"
            return self.channels[args[0]].variables.get(args[1], "_undef_")
        if name == "uuid_setvar" and len(args) >= 2:
            if args[0] not in self.channels:
                return "-ERR No such channel!\n"
            self.channels[args[0]].variables[args[1]] = " ".join(args[2:])
            return "+OK\n"
        if name == "uuid_audio_stream" and not self.audio_stream_loaded:
            return f"-ERR {name} Command not found!\n"
        if name in ("uuid_transfer", "uuid_broadcast", "uuid_break", "uuid_audio_stream"):
            if not args or args[0] not in self.channels:
                # The replies of the lab FreeSWITCH 1.11.1 for a channel that is gone.
                if name == "uuid_broadcast":
                    return "-ERR invalid uuid\n"
                if name == "uuid_audio_stream":
                    return "-ERR Operation Failed\n"
                return "-ERR No such channel!\n"
            if name == "uuid_audio_stream" and args[1:2] == ["start"]:
                if args[0] in self.streams_by_uuid:
                    return "-ERR Operation Failed\n"  # the lab's reply: a stream is attached
                self._start_audio_stream(args[0], arg)
                return "+OK Success\n"
            if name == "uuid_audio_stream" and args[1:2] == ["stop"]:
                stream = self.streams_by_uuid.pop(args[0], None)
                if stream is None:
                    return "-ERR Operation Failed\n"
                stream.stop()
                self._playout(args[0]).files_deleted()  # the module deletes its files
                return "+OK Success\n"
            elif name == "uuid_transfer" and len(args) >= 2:
                context = args[3] if len(args) > 3 else "default"
                if self.channels[args[0]].placing:  # undone by the originate's &park()
                    self.channels[args[0]].lost_transfer_context = context
                    return "+OK\n"
                self._tg.create_task(self._run_transfer_extension(args[0], args[1], context))
            elif name == "uuid_broadcast" and len(args) >= 2:
                self.broadcasts.append((args[0], args[1]))
                self._queue_file(args[0], args[1], lead_frames=5)  # switch_ivr_broadcast
            elif name == "uuid_break":
                self.breaks.append(args[0])
                self._playout(args[0]).break_playback(all_queued=args[1:2] == ["all"])
            return "+OK Message sent\n" if name == "uuid_broadcast" else "+OK\n"
        if name == "uuid_bridge" and len(args) == 2:
            if not all(a in self.channels for a in args):
                return "-ERR Invalid uuid\n"
            self._tg.create_task(self._form_bridge(args[0], args[1]))
            return f"+OK {args[1]}\n"
        return f"-ERR {name} Command not found!\n"

    def _show_channels(self) -> str:
        return show_channels_json(list(self.channels.values()))

    def _channel_headers(self, channel: FakeChannel, name: str) -> dict[str, str]:
        return {
            "Event-Name": name,
            "Unique-ID": channel.uuid,
            "Channel-Call-UUID": channel.uuid,
            "Call-Direction": channel.direction,
            "Channel-Name": channel.channel_name,
            "Caller-Destination-Number": channel.destination,
            "Caller-Caller-ID-Number": channel.caller_id_number,
            "Answer-State": "answered" if channel.answered else "ringing",
        }

    async def _originate(self, command: str) -> str:
        match = ORIGINATE_COMMAND.fullmatch(command.strip())
        if not match:
            return "-ERR INVALID_URL\n"
        variables = dict(v.split("=", 1) for v in split_unescaped(match["vars"]) if "=" in v)
        self.originates.append(variables)
        channel_uuid = variables.get("origination_uuid") or str(uuid_mod.uuid4())
        await asyncio.sleep(self.create_delay)
        if channel_uuid in self.channels:
            return "-ERR DESTINATION_OUT_OF_ORDER\n"
        dest = match["dest"] or match["exten"]
        if match["gw"] in self.down_gateways:
            return "-ERR GATEWAY_DOWN\n"
        channel = FakeChannel(
            channel_uuid, dest, variables.get("origination_caller_id_number", ""), variables
        )
        status, cause, answered = OUTCOMES[self.destinations.get(dest, "answer")]
        self.channels[channel_uuid] = channel
        self.emit(self._channel_headers(channel, "CHANNEL_CREATE"))
        if match["exten"] is not None:
            self._loopback_b_leg(channel, match["context"] or "default", match["dialplan"] or "xml")
        await asyncio.sleep(self.ring_delay)
        if status not in (403, 404, 503) and channel_uuid in self.channels:
            self.emit(self._channel_headers(channel, "CHANNEL_PROGRESS"))
            await asyncio.sleep(self.ring_delay)
        if dest in self.ringing and channel_uuid in self.channels:
            answered = await self._ring(channel_uuid, int(variables.get("originate_timeout", 60)))
            status, cause = (200, "NORMAL_CLEARING") if answered else (480, "NO_ANSWER")
        if channel_uuid not in self.channels:  # uuid_kill while it rang
            return f"-ERR {channel.hangup_cause or 'ORIGINATOR_CANCEL'}\n"
        if answered:
            partner = self.channels.get(channel.partner or "")
            if partner is not None:  # the -b leg's extension was answered: then the -a leg
                partner.answered = True
                self.emit(self._channel_headers(partner, "CHANNEL_ANSWER"))
            channel.answered = True
            self.emit(self._channel_headers(channel, "CHANNEL_ANSWER"))
            if self.job_after_answer:
                channel.placing = True
                await asyncio.sleep(self.job_after_answer)
                channel.placing = False
            # The originate's &park() reports after the answer, in the originate's context
            # ("default"), as on the lab FreeSWITCH; a blind transfer must not take it for its
            # own failure.
            self._tg.create_task(self._late_park(channel_uuid))
            if dest in self.agent_presses:
                self._tg.create_task(self._press_later(channel_uuid, self.agent_presses[dest]))
            if dest in self.hang_up_after:
                self._tg.create_task(self._hang_up_later(channel_uuid, self.hang_up_after[dest]))
            return f"+OK {channel_uuid}\n"
        self._hangup(channel_uuid, cause, status)
        return f"-ERR {cause}\n"

    async def _ring(self, channel_uuid: str, timeout: int) -> bool:
        """Wait for ``answer`` (True), a hang-up or the originate timeout (False)."""
        event = self._answer[channel_uuid] = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return False
        finally:
            del self._answer[channel_uuid]
        return channel_uuid in self.channels

    def _hangup(self, channel_uuid: str, cause: str, sip_status: int | None) -> None:
        channel = self.channels.pop(channel_uuid, None)
        if channel is None:
            return
        channel.hangup_cause = cause
        self._playout(channel_uuid).hang_up()
        if channel_uuid in self._answer:
            self._answer[channel_uuid].set()  # wakes the ringing originate: it fails
        stream = self.streams_by_uuid.pop(channel_uuid, None)
        if stream is not None:
            stream.stop()  # the media bug closes with the channel
        headers = self._channel_headers(channel, "CHANNEL_HANGUP_COMPLETE")
        headers["Hangup-Cause"] = cause
        headers["variable_hangup_cause_q850"] = str(Q850.get(cause, 16))
        if sip_status is not None:
            headers["variable_sip_term_status"] = str(sip_status)
        self.emit(headers)
        if channel.partner is not None:  # a loopback pair ends together
            self._hangup(channel.partner, cause, sip_status)
        # After uuid_bridge the survivor goes back to its own application (park) unless it has
        # hangup_after_bridge=true, as the lab FreeSWITCH showed (switch_ivr_bridge.c).
        peer = self.bridged.pop(channel_uuid, None)
        if peer is not None:
            self.bridged.pop(peer, None)
            survivor = self.channels.get(peer)
            if survivor is not None and survivor.variables.get("hangup_after_bridge") == "true":
                self._hangup(peer, cause, sip_status)

    def _start_audio_stream(self, channel_uuid: str, arg: str) -> None:
        # uuid_audio_stream <uuid> start <url> <mix> <rate> [metadata...]
        parts = arg.split(" ", 5)
        if len(parts) < 5 or channel_uuid in self.streams_by_uuid:
            return
        rate = int(parts[4].rstrip("k")) * 1000
        channels = 2 if parts[3] == "stereo" else 1
        channel = self.channels[channel_uuid]

        def emit(subclass: str, body: str) -> None:
            headers = self._channel_headers(channel, "CUSTOM") | {"Event-Subclass": subclass}
            self.emit(headers, body)

        stream = FakeAudioStreamClient(
            parts[2],
            parts[5] if len(parts) > 5 else None,
            sample_rate=rate,
            channels=channels,
            channel_uuid=channel_uuid,
            on_event=emit,
        )
        self.audio_streams.append(stream)
        self.streams_by_uuid[channel_uuid] = stream
        silence = bytes(stream.frame_bytes)
        give_up = self.stream_give_ups.pop(0) if self.stream_give_ups else None
        task = self._tg.create_task(stream.serve([silence] * self.stream_frames, give_up=give_up))

        def detach(_task: object) -> None:
            # As mod_audio_stream on the lab: a stream whose websocket closed (voicedock gone,
            # say after a kill -9) leaves the channel, so a new ``start`` works.
            if self.streams_by_uuid.get(channel_uuid) is stream:
                del self.streams_by_uuid[channel_uuid]

        task.add_done_callback(detach)

    # --- what the channel played -------------------------------------------------------------

    def played_audio(self, channel_uuid: str) -> bytes:
        """L16 of every file queued on the channel (uuid_broadcast or sendmsg), in order."""
        files = self._module_files()
        playout = self.playouts.get(channel_uuid)
        return b"".join(files.get(f.path, b"") for f in playout.files) if playout else b""

    def queued(self, channel_uuid: str) -> list[str]:
        """Every file queued for playback on the channel (uuid_broadcast or sendmsg)."""
        playout = self.playouts.get(channel_uuid)
        return [f.path for f in playout.files] if playout else []

    def heard_audio(self, channel_uuid: str) -> bytes:
        """L16 the party heard, by the clock (``fake_playout``): the silences between files
        and only what was played before a break, the files' deletion or the hang-up."""
        playout = self.playouts.get(channel_uuid)
        return playout.heard() if playout else b""

    def _module_files(self) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for stream in self.audio_streams:
            files.update(stream.files)
        return files

    def _playout(self, channel_uuid: str, rate: int = 8000) -> ChannelPlayout:
        if channel_uuid not in self.playouts:
            self.playouts[channel_uuid] = ChannelPlayout(rate)
        return self.playouts[channel_uuid]

    def _queue_file(self, channel_uuid: str, path: str, *, lead_frames: int) -> None:
        audio = self._module_files().get(path)
        rate = int(path.rpartition(".r")[2]) * 1000 if audio is not None else 8000
        self._playout(channel_uuid, rate).queue(path, audio, lead_frames=lead_frames)
        self._echo(channel_uuid, path)

    def _sendmsg(self, rest: str, headers: Mapping[str, str]) -> str:
        """``sendmsg <uuid>`` (mod_event_socket): queue the call command on the channel."""
        channel_uuid = rest.strip()
        if channel_uuid not in self.channels:
            return f"-ERR invalid session id [{channel_uuid}]"
        command = (headers.get("call-command"), headers.get("execute-app-name"))
        path = headers.get("execute-app-arg", "")
        if command == ("execute", "playback") and path:
            self.playbacks.append((channel_uuid, path))
            lead = int(headers.get("lead-frames", "0"))
            self._queue_file(channel_uuid, path, lead_frames=lead)
        return "+OK"

    async def _run_transfer_extension(self, channel_uuid: str, target: str, context: str) -> None:
        """``voicedock_transfer`` (dialplan/freeswitch): bridge to the target; on failure
        (``continue_on_fail``) set ``voicedock_transfer_result`` and park the caller again.
        A transfer started right after the answer sees the originate's late park first."""
        await asyncio.sleep(max(self.ring_delay, self.late_park_delay + 0.02))
        channel = self.channels.get(channel_uuid)
        if channel is None:
            return
        _status, cause, answered = OUTCOMES[self.destinations.get(target, "answer")]
        if answered:
            other = {"Other-Leg-Unique-ID": str(uuid_mod.uuid4())}
            self.emit(self._channel_headers(channel, "CHANNEL_BRIDGE") | other)
        else:
            failed = {"variable_voicedock_transfer_result": cause, "Caller-Context": context}
            self.emit(self._channel_headers(channel, "CHANNEL_PARK") | failed)

    def _echo(self, channel_uuid: str, path: str) -> None:
        channel = self.channels.get(channel_uuid)
        stream = self.streams_by_uuid.get(channel_uuid)
        if channel is None or stream is None or channel.destination not in self.echo_destinations:
            return
        stream.send_audio(stream.files.get(path, b""))

    def _loopback_b_leg(self, a_leg: FakeChannel, context: str, dialplan: str) -> None:
        """mod_loopback's second channel: a new uuid, inbound, named ``loopback/<exten>-b``,
        running ``<exten>`` in ``<context>`` with the originate's ``{...}`` variables."""
        exten = a_leg.destination
        self.loopback_dials.append(f"{exten}/{context}/{dialplan}")
        a_leg.name, a_leg.context = f"loopback/{exten}-a", context
        variables = {k: v for k, v in a_leg.variables.items() if k != "origination_uuid"}
        b_leg = FakeChannel(
            str(uuid_mod.uuid4()),
            exten,
            a_leg.caller_id_number,
            variables,
            direction="inbound",
            name=f"loopback/{exten}-b",
            context=context,
            partner=a_leg.uuid,
        )
        a_leg.partner = b_leg.uuid
        self.channels[b_leg.uuid] = b_leg
        self.emit(self._channel_headers(b_leg, "CHANNEL_CREATE"))

    async def _form_bridge(self, caller: str, other: str) -> None:
        """As uuid_bridge_on_soft_execute (switch_ivr_bridge.c) on the lab FreeSWITCH: the
        bridge forms a moment after +OK, reported on the first leg only. If the other leg is
        gone by then, the first one parks again when told to (``park_after_bridge``,
        ``uuid_bridge_park_on_cancel``) and is hung up otherwise."""
        await asyncio.sleep(self.bridge_delay)
        channel = self.channels.get(caller)
        if channel is None:
            return
        if other not in self.channels:
            told = ("park_after_bridge", "uuid_bridge_park_on_cancel")
            if any(channel.variables.get(name) == "true" for name in told):
                park = {"Other-Leg-Unique-ID": other}
                self.emit(self._channel_headers(channel, "CHANNEL_PARK") | park)
            else:
                self._hangup(caller, "DESTINATION_OUT_OF_ORDER", None)
            return
        self.emit(self._channel_headers(channel, "CHANNEL_BRIDGE") | {"Other-Leg-Unique-ID": other})
        self.bridged[caller], self.bridged[other] = other, caller
        for leg in (caller, other):
            if self.channels[leg].partner is not None:
                self._tg.create_task(self._bow_out(leg))

    async def _bow_out(self, leg: str) -> None:
        """A loopback leg bridged on both sides bows out (``loopback_bowout``, on by default):
        its peers are bridged directly and both loopback legs hang up (NORMAL_UNSPECIFIED)."""
        await asyncio.sleep(self.ring_delay)
        channel = self.channels.get(leg)
        if channel is not None:
            # The caller is re-bridged to the far leg, not hung up with the loopback legs.
            for loop_leg in (leg, channel.partner or ""):
                peer = self.bridged.pop(loop_leg, None)
                if peer is not None:
                    self.bridged.pop(peer, None)
            self._hangup(leg, "NORMAL_UNSPECIFIED", 200)

    async def _late_park(self, channel_uuid: str) -> None:
        await asyncio.sleep(self.late_park_delay)
        channel = self.channels.get(channel_uuid)
        if channel is not None:
            headers = self._channel_headers(channel, "CHANNEL_PARK")
            self.emit(headers | {"Caller-Context": channel.lost_transfer_context or "default"})

    async def _press_later(self, channel_uuid: str, digit: str) -> None:
        await asyncio.sleep(self.agent_press_delay)
        if channel_uuid in self.channels:
            self.press_digit(channel_uuid, digit)

    async def _hang_up_later(self, channel_uuid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self.remote_hangup(channel_uuid)

    def restart(self, *, down_for: float = 0.0) -> None:
        """FreeSWITCH restarts: every channel is gone, uptime starts again, sockets drop (the
        audio streams' websockets first, as a kill -9 of the lab FreeSWITCH shows). With
        ``down_for`` it takes that long to come back: until then a connection is closed at
        once, before the auth request (nothing listens on the lab's port)."""
        self.channels.clear()
        for stream in self.streams_by_uuid.values():
            stream.stop()
        self.streams_by_uuid.clear()
        self.booted = time.monotonic() + down_for
        self.drop_connections()
