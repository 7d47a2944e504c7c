"""The PBX voicedock drives (``[pbx]``: Asterisk, one server or several, or FreeSWITCH) and
the SIP trunks calls go out on (``[[trunks]]``)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from voicedock.config.table_types import (
    E164,
    NAME_CHARACTERS,
    NAME_MAX,
    NotEmpty,
    Port,
    Table,
    Token,
    matching,
    within,
)
from voicedock.domain.audio import MediaFormatName
from voicedock.errors import ConfigError
from voicedock.validation import TOKEN_PATTERN, is_host, is_token


class AsteriskTransferSettings(Table):
    """[pbx.asterisk.transfer]: warm transfers (docs/transfers.md)."""

    # ARI media URI ("sound:<name>"), "moh:<class>", "": silence
    hold_media: Annotated[
        str,
        matching(
            r"|(moh|tone|sound|recording):[A-Za-z0-9_.\-/;=]+",
            "must be moh:<class>, tone:/sound:<name> or empty",
        ),
    ] = "tone:ring"
    answer_timeout_seconds: Annotated[int, Meta(ge=5, le=300)] = 30  # the agent's phone rings
    # After the briefing, to press 1/2 or say yes/no.
    decision_timeout_seconds: Annotated[int, Meta(ge=3, le=120)] = 20
    voice_decision: bool = True  # the agent may answer by voice (offline STT), not only DTMF


class AsteriskSettings(Table):
    # One server of several ([[pbx.asterisk.servers]]): the name trunks give as their ``pbx``.
    name: str = ""
    ari_url: str = "http://127.0.0.1:8088/ari"
    ari_user: str = "voicedock"
    ari_password: str = ""
    app: str = "voicedock"
    ami_host: str = "127.0.0.1"
    ami_port: Port = 5038
    ami_user: str = "voicedock"
    ami_secret: str = ""
    originate_via: Literal["ari", "ami"] = "ari"
    media_connection: Literal["server", "client"] = "server"
    # Client mode: the websocket_client.conf section this node's media legs dial (one per node
    # when several nodes run on one machine, each with its own port: docs/nodes.md).
    media_client_connection: Annotated[
        str,
        matching(
            TOKEN_PATTERN,
            "a websocket_client.conf section: 1-64 letters, digits, '_', '.', '-'",
            max_length=NAME_MAX,
        ),
    ] = "voicedock_media"
    # How a call's audio travels between Asterisk and voicedock (docs/media-transports.md):
    # "auto" chooses per server from what it offers (chan_websocket, else RTP over UDP, which
    # every Asterisk from 16.6 has); or one of them, always.
    media_transport: Literal["auto", "websocket", "rtp", "audiosocket"] = "auto"
    # RTP and AudioSocket: the address voicedock listens on for the call's audio, and the
    # address Asterisk is told to send it to ("": media_host; with a wildcard media_host, the
    # address voicedock reaches Asterisk's ARI from).
    media_host: str = "127.0.0.1"
    media_public_host: str = ""
    # RTP: the UDP ports of voicedock's side, one per call's media leg (an even port each).
    rtp_port_min: Annotated[int, Meta(ge=1024, le=65534)] = 40000
    rtp_port_max: Annotated[int, Meta(ge=1025, le=65535)] = 40999
    # AudioSocket: the TCP port Asterisk connects to (media_public_host:audiosocket_port).
    audiosocket_port: Port = 8092
    transfer_context: str = "voicedock-transfers"
    transfer: AsteriskTransferSettings = msgspec.field(default_factory=AsteriskTransferSettings)
    # Several Asterisk servers, each a table of the keys above plus ``name``; a key a server
    # leaves out is the one of [pbx.asterisk]. Empty: [pbx.asterisk] is the one server.
    servers: list[AsteriskSettings] = msgspec.field(default_factory=list)

    def check_media(self, key: str = "pbx.asterisk") -> None:
        """The media addresses are what they say (they reach ARI's ``external_host``), and
        the RTP port range holds at least one even port."""
        try:
            ipaddress.ip_address(self.media_host)
        except ValueError:
            raise ConfigError(f"{key}.media_host", "must be an IPv4 or IPv6 address") from None
        public = self.media_public_host
        if public and not is_host(public):
            raise ConfigError(f"{key}.media_public_host", "must be an IP address or a host name")
        low, high = self.rtp_port_min, self.rtp_port_max
        if high < low + (low % 2):
            raise ConfigError(
                f"{key}.rtp_port_max", f"must be at least rtp_port_min ({low}) with an even port"
            )

    def check_servers(self) -> None:
        """[[pbx.asterisk.servers]]: each named once, none with servers of its own, one
        media connection for all."""
        if self.name:
            raise ConfigError("pbx.asterisk.name", "only a server of pbx.asterisk.servers has one")
        self.check_media()
        names: set[str] = set()
        for i, server in enumerate(self.servers):
            key = f"pbx.asterisk.servers[{i}]"
            if not is_token(server.name) or len(server.name) > NAME_MAX:
                raise ConfigError(f"{key}.name", "1-64 letters, digits, '_', '.', '-'")
            if server.name in names:
                raise ConfigError(f"{key}.name", f"duplicate server {server.name!r}")
            names.add(server.name)
            if server.servers:
                raise ConfigError(f"{key}.servers", "a server lists no servers of its own")
            server.check_media(key)
            if server.media_connection != self.media_connection:
                # Client mode: one /media route of this process takes every server's media legs.
                raise ConfigError(
                    f"{key}.media_connection", "set it in [pbx.asterisk]: one for every server"
                )


def inherit_server_keys(raw: dict[str, object]) -> None:
    """Each of [[pbx.asterisk.servers]] takes the keys it leaves out from [pbx.asterisk]
    (``raw``: the whole file, before it is decoded)."""
    pbx = raw.get("pbx")
    asterisk = pbx.get("asterisk") if isinstance(pbx, dict) else None
    if not isinstance(asterisk, dict) or not isinstance(asterisk.get("servers"), list):
        return  # no list, or not a table: the decoding names the key
    servers = asterisk.pop("servers")
    shared = {k: v for k, v in asterisk.items() if k != "name"}
    # Last: a bad key of the table is named there, not in the first server taking it.
    asterisk["servers"] = [
        {**shared, **server} if isinstance(server, dict) else server for server in servers
    ]


class FreeswitchTransferSettings(Table):
    """[pbx.freeswitch.transfer]: warm transfers (docs/freeswitch.md)."""

    # For the agent to answer, and again to press 1 after the briefing.
    timeout_seconds: Annotated[int, within(1, None, "must be positive")] = 30
    # The agent may also answer the warm briefing by voice ("yes" / "no"), heard on the agent
    # leg's audio stream; DTMF decides either way.
    voice_decision: bool = True


class FreeswitchSettings(Table):
    esl_host: str = "127.0.0.1"
    esl_port: int = 8021
    esl_password: str = ""
    # FreeSWITCH ships "ClueCon"; voicedock refuses it unless this is set (tests only).
    allow_default_password: bool = False
    # Numbers whose parked inbound calls are voicedock's; empty: every configured number.
    dids: list[E164] = msgspec.field(default_factory=list)
    transfer_context: Token = "voicedock_transfer"  # dialplan/freeswitch/voicedock.xml
    # The websocket server mod_audio_stream connects to (uuid_audio_stream ... start <url>).
    media_host: str = "127.0.0.1"
    media_port: Port = 8091
    # How FreeSWITCH reaches that server (ws:// or wss://, no path); empty: ws://host:port.
    media_public_url: Annotated[
        str,
        matching(r"|wss?://[A-Za-z0-9.\-\[\]:]+", "must be ws://host[:port] or wss://..."),
    ] = ""
    transfer: FreeswitchTransferSettings = msgspec.field(default_factory=FreeswitchTransferSettings)


class PbxSettings(Table):
    kind: Literal["asterisk", "freeswitch", "none"] = "asterisk"
    asterisk: AsteriskSettings = msgspec.field(default_factory=AsteriskSettings)
    freeswitch: FreeswitchSettings = msgspec.field(default_factory=FreeswitchSettings)

    def check(self) -> None:
        """What the PBX voicedock drives needs of the others' keys."""
        if self.kind == "asterisk":
            self.asterisk.check_servers()
        if self.kind == "freeswitch" and (
            self.freeswitch.esl_password in ("", "ClueCon")
            and not self.freeswitch.allow_default_password
        ):
            raise ConfigError(
                "pbx.freeswitch.esl_password",
                "refusing the empty or default ESL password 'ClueCon'",
            )

    def server_names(self) -> list[str]:
        """The names of the Asterisk servers a trunk may name (none: one server)."""
        if self.kind != "asterisk":
            return []
        return [server.name for server in self.asterisk.servers]


class TrunkSettings(Table):
    name: Token
    # The PJSIP endpoint (Asterisk) or sofia gateway (FreeSWITCH); empty: the name.
    endpoint: Annotated[str, matching(f"|{TOKEN_PATTERN}", NAME_CHARACTERS)] = ""
    codec: MediaFormatName = "ulaw"  # one of domain.audio.CALL_MEDIA_FORMATS
    description: str = ""
    pbx: str = ""  # the [[pbx.asterisk.servers]] name carrying it; "": the only server
    # What the carrier contracted (docs/campaigns.md), counted across every node: new calls
    # per second and calls at once (inbound too); 0: no limit.
    max_cps: Annotated[int, Meta(ge=0, le=10_000)] = 0
    max_channels: Annotated[int, Meta(ge=0, le=100_000)] = 0
    # The organizations whose numbers may call through it (docs/api.md "Phone numbers"). Empty:
    # those the operator put numbers on (config or `voicedock numbers`), no other.
    organizations: list[NotEmpty] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.endpoint:
            self.endpoint = self.name

    def serves(self, organization: str) -> bool:
        """Whether a number of ``organization`` may be on this trunk (and call through it)."""
        return not self.organizations or organization in self.organizations

    def check_server(self, key: str, servers: list[str]) -> None:
        """A trunk names the server that carries it; with one server (or none) it may not."""
        if not self.pbx:
            if len(servers) > 1:
                raise ConfigError(key, f"name the server carrying it: one of {', '.join(servers)}")
            return
        if not servers:
            raise ConfigError(key, "names a server, but pbx.asterisk lists no servers")
        if self.pbx not in servers:
            raise ConfigError(key, f"unknown server {self.pbx!r}; one of {', '.join(servers)}")
