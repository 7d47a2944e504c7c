"""What each worker of ``voicedock serve --workers N`` takes from the one configuration, what
the configuration must allow for N workers, and how many run when the operator does not say."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicedock.config import Settings, load_settings
from voicedock.config.workers import (
    WorkerPlace,
    check_workers,
    is_worker_of,
    worker_settings,
)
from voicedock.errors import ConfigError
from voicedock.workers import count
from voicedock.workers.count import cgroup_cpu_quota, worker_count

pytestmark = pytest.mark.unit

POSTGRES = "postgresql://voicedock@127.0.0.1/voicedock"


def settings(tmp_path: Path, toml: str = "", database: str = POSTGRES) -> Settings:
    path = tmp_path / "voicedock.toml"
    path.write_text(f'[database]\nurl = "{database}"\n[node]\nid = "edge"\n{toml}')
    return load_settings(path, environ={})


def test_each_worker_is_a_node_with_its_own_ports(tmp_path: Path) -> None:
    base = load_settings(environ={"VOICEDOCK_DATABASE__URL": POSTGRES, "VOICEDOCK_NODE__ID": "e"})
    place = WorkerPlace.of(base, 2, 3)
    mine = worker_settings(base, place)
    assert mine.node.id == "e-w2"
    assert place.own_port == base.server.port + 2
    assert place.others() == {"e-w1": base.server.port + 1, "e-w3": base.server.port + 3}
    assert mine.server == base.server  # the API port is the machine's
    assert mine.pbx.freeswitch.media_port == base.pbx.freeswitch.media_port + 1
    assert mine.pbx.asterisk.media_client_connection == "voicedock_media-w2"
    assert mine.database == base.database
    assert base.node.id == "e"  # the machine's own settings unchanged


def test_asterisk_servers_and_freeswitch_public_url_per_worker(tmp_path: Path) -> None:
    path = tmp_path / "v.toml"
    path.write_text(
        f'[database]\nurl = "{POSTGRES}"\n[node]\nid = "edge"\n'
        '[pbx.asterisk]\nmedia_connection = "client"\nmedia_client_connection = "vd"\n'
        '[[pbx.asterisk.servers]]\nname = "ams"\n[[pbx.asterisk.servers]]\nname = "fra"\n'
        '[pbx.freeswitch]\nmedia_port = 9000\nmedia_public_url = "wss://fs.example.com:9443"\n'
    )
    base = load_settings(path, environ={})
    third = worker_settings(base, WorkerPlace.of(base, 3, 4))
    assert [s.media_client_connection for s in third.pbx.asterisk.servers] == ["vd-w3", "vd-w3"]
    assert third.pbx.freeswitch.media_port == 9002
    assert third.pbx.freeswitch.media_public_url == "wss://fs.example.com:9445"


def test_each_worker_listens_for_audiosocket_on_a_port_of_its_own(tmp_path: Path) -> None:
    base = settings(
        tmp_path,
        "[pbx.asterisk]\naudiosocket_port = 9100\n"
        '[[pbx.asterisk.servers]]\nname = "ams"\n'
        '[[pbx.asterisk.servers]]\nname = "fra"\naudiosocket_port = 9200\n',
    )
    check_workers(base, 4)  # 9100-9103 and 9200-9203: clear of the API's 8080-8084
    workers = [worker_settings(base, WorkerPlace.of(base, k, 4)) for k in (1, 2, 4)]
    ports = [[s.audiosocket_port for s in w.pbx.asterisk.servers] for w in workers]
    assert ports == [[9100, 9200], [9101, 9201], [9103, 9203]]
    third = worker_settings(base, WorkerPlace.of(base, 3, 4))
    assert third.pbx.asterisk.audiosocket_port == 9102
    assert [s.rtp_port_min for s in third.pbx.asterisk.servers] == [40000, 40000]  # RTP shared
    assert base.pbx.asterisk.servers[0].audiosocket_port == 9100  # the machine's unchanged


def test_offline_speech_pools_share_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    base = load_settings(environ={"VOICEDOCK_DATABASE__URL": POSTGRES})
    mine = worker_settings(base, WorkerPlace.of(base, 1, 4))
    assert (mine.speech.recognition_workers, mine.speech.synthesis_workers) == (2, 2)
    assert mine.speech.whisper_cpu_threads == 1
    given = load_settings(
        environ={"VOICEDOCK_DATABASE__URL": POSTGRES, "VOICEDOCK_SPEECH__RECOGNITION_WORKERS": "5"}
    )
    assert worker_settings(given, WorkerPlace.of(given, 1, 4)).speech.recognition_workers == 5


@pytest.mark.parametrize(
    ("toml", "workers", "key", "says"),
    [
        ("", 2, "database.url", "an SQLite database serves one voicedock node"),
        ("[server]\nport = 65534\n", 2, "server.port", "worker 2's own port would be 65536"),
        (
            '[pbx]\nkind = "freeswitch"\n[pbx.freeswitch]\nesl_password = "x"\nmedia_port = 8083\n',
            4,
            "pbx.freeswitch.media_port",
            "the workers' media ports 8083-8086 overlap the API's 8080-8084",
        ),
        (
            '[pbx]\nkind = "freeswitch"\n[pbx.freeswitch]\nesl_password = "x"\n'
            'media_public_url = "wss://fs.example.com"\n',
            2,
            "pbx.freeswitch.media_public_url",
            "with several workers it names its port",
        ),
        (
            "[pbx.asterisk]\naudiosocket_port = 8082\n",
            4,
            "pbx.asterisk.audiosocket_port",
            "the workers' AudioSocket ports 8082-8085 overlap the API's 8080-8084",
        ),
        (
            '[[pbx.asterisk.servers]]\nname = "a"\n'
            '[[pbx.asterisk.servers]]\nname = "b"\naudiosocket_port = 8079\n',
            3,
            "pbx.asterisk.servers[1].audiosocket_port",
            "the workers' AudioSocket ports 8079-8081 overlap the API's 8080-8083",
        ),
        (
            "[pbx.asterisk]\naudiosocket_port = 65535\n",
            2,
            "pbx.asterisk.audiosocket_port",
            "2 workers need 2 ports",
        ),
    ],
)
def test_what_several_workers_need(
    tmp_path: Path, toml: str, workers: int, key: str, says: str
) -> None:
    database = f"sqlite:///{tmp_path / 'db.sqlite'}" if key == "database.url" else POSTGRES
    config = settings(tmp_path, toml, database)
    with pytest.raises(ConfigError) as refused:
        check_workers(config, workers)
    assert refused.value.key == key
    assert says in str(refused.value)
    check_workers(config, 1)  # one worker: today's node


def test_a_node_id_too_long_for_its_workers(tmp_path: Path) -> None:
    long_id = "n" * 61
    config = settings(tmp_path, database=POSTGRES)
    config.node.id = long_id
    check_workers(config, 9)  # "-w9": 64 characters, "-w10" one more
    with pytest.raises(ConfigError, match="too long for worker ids"):
        check_workers(config, 10)


def test_how_many_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(count, "usable_cores", lambda: 16)
    cloud = '[speech]\nstt = "deepgram"\ntts = "openai"\nllm = "openai"\n'
    assert worker_count(settings(tmp_path, cloud)) == 16
    assert worker_count(settings(tmp_path, cloud), 3) == 3
    sqlite = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert worker_count(settings(tmp_path, cloud, sqlite)) == 1
    assert worker_count(settings(tmp_path, "")) == 1  # Whisper, Piper
    whisper = '[speech]\nstt = "faster_whisper"\ntts = "openai"\n'
    assert worker_count(settings(tmp_path, whisper)) == 1
    piper = '[speech]\nstt = "deepgram"\ntts = "piper"\n'
    assert worker_count(settings(tmp_path, piper)) == 1
    assert worker_count(settings(tmp_path, piper), 2) == 2


def test_the_configured_workers(tmp_path: Path) -> None:
    path = tmp_path / "v.toml"
    path.write_text(f'[database]\nurl = "{POSTGRES}"\n[node]\nid = "edge"\nworkers = 4\n')
    config = load_settings(path, environ={})
    assert worker_count(config) == 4
    assert worker_count(config, 2) == 2  # --workers wins
    with pytest.raises(ConfigError, match=r"node\.workers"):
        load_settings(path, environ={"VOICEDOCK_NODE__WORKERS": "257"})


def test_a_cgroup_cpu_quota_caps_the_cores(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    (root / "system.slice" / "voicedock.service").mkdir(parents=True)
    own = tmp_path / "self-cgroup"
    own.write_text("0::/system.slice/voicedock.service\n")
    assert cgroup_cpu_quota(root, own) is None
    (root / "system.slice" / "voicedock.service" / "cpu.max").write_text("max 100000\n")
    (root / "system.slice" / "cpu.max").write_text("250000 100000\n")
    assert cgroup_cpu_quota(root, own) == 2.5
    (root / "system.slice" / "voicedock.service" / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(root, own) == 1.5
    assert cgroup_cpu_quota(root, tmp_path / "none") is None


def test_which_nodes_are_a_machines_workers() -> None:
    assert is_worker_of("edge", "edge-w1")
    assert is_worker_of("edge", "edge-w12")
    assert not is_worker_of("edge", "edge")
    assert not is_worker_of("edge", "edge-w0")
    assert not is_worker_of("edge", "edge-2-w1")
    assert not is_worker_of("ed.e", "edge-w1")
