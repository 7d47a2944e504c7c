"""The worker processes of ``voicedock serve --workers N``: each a node of its own on one
machine, and what each takes from the one configuration (docs/nodes.md, "Workers").

Worker ``k`` (1 to N) of the machine whose ``[node] id`` is ``edge``:

* is node ``edge-w<k>``: its lease, its calls, its ARI application (``<app>-edge-w<k>``);
* serves the API on ``[server] port``, which every worker listens on (``SO_REUSEPORT``: the
  kernel spreads the connections), and on a port of its own, ``port + k``, on the same
  host: its ``/metrics``, its ``/health`` alone, Asterisk client mode's ``/media`` (the
  ``websocket_client.conf`` section ``<media_client_connection>-w<k>`` points there), and
  where the other workers relay a request for its calls (live listen);
* FreeSWITCH: serves mod_audio_stream on ``media_port + k - 1`` (``media_public_url``'s port
  + k - 1);
* Asterisk over AudioSocket: listens on ``audiosocket_port + k - 1``; over RTP, the workers
  share the ``rtp_port_min``..``rtp_port_max`` range (a port one holds, the others pass over);
* offline speech: its recognition and synthesis pools share the machine's cores with the other
  workers (``[speech] recognition_workers`` and ``synthesis_workers`` left at 0: the cores / N
  each, one thread per transcription).

One PostgreSQL database serves them all; an SQLite database serves one node, so one worker.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import msgspec

from voicedock.config.pbx import AsteriskSettings
from voicedock.config.settings import Settings
from voicedock.config.speech import SpeechSettings
from voicedock.config.table_types import NAME_MAX
from voicedock.errors import ConfigError

_WORKER = re.compile(r"([1-9][0-9]*)/([1-9][0-9]*)")
# Where a worker reaches another's own port when they listen on every address.
_LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


class WorkerPlace(msgspec.Struct, frozen=True):
    """Worker ``index`` of ``count`` on this machine, whose ``[node] id`` is ``base_id`` and
    whose workers share ``[server]`` ``host``:``port``."""

    base_id: str
    index: int
    count: int
    host: str
    port: int

    @classmethod
    def of(cls, settings: Settings, index: int, count: int) -> WorkerPlace:
        """Worker ``index`` (1 to ``count``) of the machine ``settings`` configure."""
        if not 1 <= index <= count:
            raise ValueError(f"worker {index} of {count}")
        return cls(settings.node.id, index, count, settings.server.host, settings.server.port)

    @classmethod
    def parse(cls, settings: Settings, text: str) -> WorkerPlace:
        """``k/N`` (``voicedock serve --worker``, which the supervisor passes)."""
        match = _WORKER.fullmatch(text)
        if match is None or int(match[1]) > int(match[2]):
            raise ConfigError("--worker", f"{text!r} is not k/N with 1 <= k <= N")
        return cls.of(settings, int(match[1]), int(match[2]))

    @property
    def node_id(self) -> str:
        return worker_node_id(self.base_id, self.index)

    @property
    def own_port(self) -> int:
        return own_port(self.port, self.index)

    def others(self) -> dict[str, int]:
        """The other workers of the machine: their node ids and own ports."""
        return {
            worker_node_id(self.base_id, k): own_port(self.port, k)
            for k in range(1, self.count + 1)
            if k != self.index
        }

    def reach(self) -> str:
        """The address a worker of this machine connects to another's own port on: the
        shared host, or loopback where the workers listen on every address."""
        return _LOOPBACK.get(self.host, self.host)


def worker_node_id(base_id: str, index: int) -> str:
    return f"{base_id}-w{index}"


def is_worker_of(base_id: str, node_id: str) -> bool:
    """``node_id`` is a worker's of the machine whose ``[node] id`` is ``base_id``."""
    return re.fullmatch(rf"{re.escape(base_id)}-w[1-9][0-9]*", node_id) is not None


def own_port(port: int, index: int) -> int:
    """Worker ``index``'s own port beside the shared ``port``."""
    return port + index


def check_workers(settings: Settings, count: int) -> None:
    """What ``count`` workers need of the configuration; ``ConfigError`` naming the key."""
    if count <= 1:
        return
    if settings.database.url.lower().startswith("sqlite"):
        raise ConfigError(
            "database.url",
            f"an SQLite database serves one voicedock node: {count} workers need PostgreSQL "
            "(or run one: --workers 1)",
        )
    last = worker_node_id(settings.node.id, count)
    if len(last) > NAME_MAX:
        raise ConfigError(
            "node.id", f"too long for worker ids ({last!r}: at most {NAME_MAX} characters)"
        )
    port = settings.server.port
    if own_port(port, count) > 65535:
        raise ConfigError(
            "server.port",
            f"worker {count}'s own port would be {own_port(port, count)} (port + k): lower it",
        )
    if settings.pbx.kind == "freeswitch":
        _check_freeswitch(settings, count)
    if settings.pbx.kind == "asterisk":
        _check_audiosocket(settings, count)


def _check_audiosocket(settings: Settings, count: int) -> None:
    api = range(settings.server.port, own_port(settings.server.port, count) + 1)
    for key, server in _asterisk_servers(settings):
        ports = range(server.audiosocket_port, server.audiosocket_port + count)
        if ports.stop > 65536:
            raise ConfigError(f"{key}.audiosocket_port", f"{count} workers need {count} ports")
        if set(ports) & set(api):
            raise ConfigError(
                f"{key}.audiosocket_port",
                f"the workers' AudioSocket ports {ports.start}-{ports.stop - 1} overlap the "
                f"API's {api.start}-{api.stop - 1} (the shared port, then one per worker): "
                "move one",
            )


def _asterisk_servers(settings: Settings) -> list[tuple[str, AsteriskSettings]]:
    asterisk = settings.pbx.asterisk
    if not asterisk.servers:
        return [("pbx.asterisk", asterisk)]
    return [(f"pbx.asterisk.servers[{i}]", s) for i, s in enumerate(asterisk.servers)]


def _check_freeswitch(settings: Settings, count: int) -> None:
    fs = settings.pbx.freeswitch
    media = range(fs.media_port, fs.media_port + count)
    api = range(settings.server.port, own_port(settings.server.port, count) + 1)
    if media.stop > 65536:
        raise ConfigError("pbx.freeswitch.media_port", f"{count} workers need {count} ports")
    if set(media) & set(api):
        raise ConfigError(
            "pbx.freeswitch.media_port",
            f"the workers' media ports {media.start}-{media.stop - 1} overlap the API's "
            f"{api.start}-{api.stop - 1} (the shared port, then one per worker): move one",
        )
    if fs.media_public_url and urlsplit(fs.media_public_url).port is None:
        raise ConfigError(
            "pbx.freeswitch.media_public_url",
            "with several workers it names its port: worker k's is that port + k - 1",
        )


def worker_settings(settings: Settings, place: WorkerPlace) -> Settings:
    """The configuration worker ``place`` runs with (the module says what changes)."""
    replace = msgspec.structs.replace
    k = place.index
    pbx = settings.pbx
    connection = f"{pbx.asterisk.media_client_connection}-w{k}"

    def own(server: AsteriskSettings) -> AsteriskSettings:
        port = server.audiosocket_port + k - 1
        return replace(server, media_client_connection=connection, audiosocket_port=port)

    asterisk = replace(own(pbx.asterisk), servers=[own(s) for s in pbx.asterisk.servers])
    fs = pbx.freeswitch
    public = fs.media_public_url
    if public:
        parts = urlsplit(public)
        public = parts._replace(
            netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{(parts.port or 0) + k - 1}"
        ).geturl()
    freeswitch = replace(fs, media_port=fs.media_port + k - 1, media_public_url=public)
    return replace(
        settings,
        node=replace(settings.node, id=place.node_id),
        pbx=replace(pbx, asterisk=asterisk, freeswitch=freeswitch),
        speech=_shared_speech(settings, place.count),
    )


def _shared_speech(settings: Settings, count: int) -> SpeechSettings:
    """``[speech]`` with the offline pools' default size shared among ``count`` workers."""
    speech = settings.speech
    share = max(1, (os.cpu_count() or 1) // count)
    return msgspec.structs.replace(
        speech,
        recognition_workers=speech.recognition_workers or share,
        synthesis_workers=speech.synthesis_workers or share,
        whisper_cpu_threads=speech.whisper_cpu_threads or 1,
    )


__all__ = [
    "WorkerPlace",
    "check_workers",
    "is_worker_of",
    "own_port",
    "worker_node_id",
    "worker_settings",
]
