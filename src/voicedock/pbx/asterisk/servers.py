"""Several Asterisk servers (``[[pbx.asterisk.servers]]``): one ``AsteriskPbx`` each, behind
one ``SeveralPbxs`` (``pbx/several.py``), sharing the node's one media endpoint, AudioSocket
listener and RTP ports."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from msgspec.structs import replace

from voicedock.config import AsteriskSettings
from voicedock.pbx.asterisk.media.transports import SharedMedia
from voicedock.pbx.asterisk.node_apps import NodeApps
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.pbx.base import Pbx, WarmDialogue
from voicedock.pbx.several import SeveralPbxs


def several_asterisks(
    servers: Sequence[AsteriskSettings],
    warm_dialogue: Callable[[], WarmDialogue],
    node_apps: Callable[[AsteriskSettings], NodeApps],
) -> SeveralPbxs:
    """One ``AsteriskPbx`` per ``[[pbx.asterisk.servers]]`` entry, in the configured order,
    each running this node's own ARI application there (``node_apps`` of the server)."""
    from voicedock.pbx.asterisk.media.acceptor import MediaAcceptor  # the media stack
    from voicedock.pbx.asterisk.media.audiosocket.server import AudioSocketServer
    from voicedock.pbx.asterisk.media.rtp.ports import RtpPorts

    # Client media mode (set once for every server): each server's legs dial the node's /media.
    client_media = any(server.media_connection == "client" for server in servers)
    acceptor = MediaAcceptor() if client_media else None
    # Servers whose legs come to the same address share its listener and its ports.
    listeners: dict[tuple[str, int], AudioSocketServer] = {}
    ports: dict[tuple[str, int, int], RtpPorts] = {}
    adapters: dict[str, Pbx] = {}
    for server in servers:
        apps = node_apps(server)
        host = server.media_host
        listener = (host, server.audiosocket_port)
        port_range = (host, server.rtp_port_min, server.rtp_port_max)
        adapters[server.name] = AsteriskPbx(
            replace(server, app=apps.own),
            warm_dialogue=warm_dialogue(),
            node_apps=apps,
            shared_media=SharedMedia(
                acceptor,
                listeners.setdefault(listener, AudioSocketServer(*listener)),
                ports.setdefault(port_range, RtpPorts(*port_range)),
            ),
        )
    return SeveralPbxs(adapters)
