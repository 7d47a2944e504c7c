"""``[[pbx.asterisk.servers]]``: several Asterisk servers by name, each trunk naming its own;
the media keys of each server (transport, addresses, RTP ports) refused naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicedock.config import Settings, load_settings
from voicedock.errors import ConfigError

pytestmark = pytest.mark.unit

TWO_SERVERS = """
[pbx.asterisk]
ari_user = "vd"
ari_password = "shared"
app = "voicedock"
ami_secret = "ami-shared"

[[pbx.asterisk.servers]]
name = "ams"
ari_url = "http://10.0.0.1:8088/ari"
ami_host = "10.0.0.1"

[[pbx.asterisk.servers]]
name = "fra"
ari_url = "http://10.0.0.2:8088/ari"
ami_host = "10.0.0.2"
ari_password = "own"
originate_via = "ami"

[[trunks]]
name = "nl"
pbx = "ams"

[[trunks]]
name = "de"
endpoint = "carrier"
pbx = "fra"
"""


def load(tmp_path: Path, toml: str, environ: dict[str, str] | None = None) -> Settings:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    return load_settings(cfg, environ=environ or {})


def test_each_server_takes_what_it_leaves_out_from_the_asterisk_table(tmp_path: Path) -> None:
    s = load(tmp_path, TWO_SERVERS, {"VOICEDOCK_PBX__ASTERISK__AMI_USER": "from-env"})
    ams, fra = s.pbx.asterisk.servers
    assert (ams.name, ams.ari_url, ams.ari_password, ams.ami_host) == (
        "ams",
        "http://10.0.0.1:8088/ari",
        "shared",
        "10.0.0.1",
    )
    assert (fra.name, fra.ari_password, fra.originate_via) == ("fra", "own", "ami")
    assert ams.ami_secret == fra.ami_secret == "ami-shared"
    assert ams.ami_user == fra.ami_user == "from-env"  # an override of the table reaches both
    assert ams.originate_via == "ari"
    assert not ams.servers
    assert [(t.name, t.endpoint, t.pbx) for t in s.trunks] == [
        ("nl", "nl", "ams"),
        ("de", "carrier", "fra"),
    ]


def test_one_table_stays_one_unnamed_server(tmp_path: Path) -> None:
    s = load(tmp_path, '[pbx.asterisk]\nari_password = "x"\n[[trunks]]\nname = "t"\n')
    assert s.pbx.asterisk.servers == []
    assert s.trunks[0].pbx == ""


def test_a_trunk_naming_no_server_is_the_only_servers(tmp_path: Path) -> None:
    toml = '[[pbx.asterisk.servers]]\nname = "only"\n[[trunks]]\nname = "t"\n'
    assert load(tmp_path, toml).trunks[0].pbx == "only"


@pytest.mark.parametrize(
    ("toml", "key", "says"),
    [
        (
            TWO_SERVERS.replace('name = "fra"', 'name = "ams"'),
            "pbx.asterisk.servers[1].name",
            "duplicate",
        ),
        (
            TWO_SERVERS.replace('name = "fra"', 'name = "fra furt"'),
            "pbx.asterisk.servers[1].name",
            "letters",
        ),
        (
            '[[pbx.asterisk.servers]]\nari_url = "http://x/ari"\n',
            "pbx.asterisk.servers[0].name",
            "letters",
        ),
        (
            TWO_SERVERS.replace('pbx = "fra"', 'pbx = "par"'),
            "trunks[1].pbx",
            "unknown server 'par'",
        ),
        (TWO_SERVERS.replace('pbx = "ams"\n', ""), "trunks[0].pbx", "one of ams, fra"),
        ('[[trunks]]\nname = "t"\npbx = "ams"\n', "trunks[0].pbx", "lists no servers"),
        ('[pbx.asterisk]\nname = "ams"\n', "pbx.asterisk.name", "only a server"),
        (
            TWO_SERVERS.replace('ami_secret = "ami-shared"', 'ami_secret = "x"\nname = "all"'),
            "pbx.asterisk.name",
            "only a server",
        ),
        (
            TWO_SERVERS.replace('ami_host = "10.0.0.2"', 'ami_host = "10.0.0.2"\nami_port = 0'),
            "pbx.asterisk.servers[1].ami_port",
            "1-65535",
        ),
        (
            TWO_SERVERS + '[pbx.asterisk.servers.transfer]\nhold_media = "x"\n',
            "pbx.asterisk.servers[1].transfer.hold_media",
            "moh",
        ),
        ("[pbx.asterisk]\nservers = 3\n", "pbx.asterisk.servers", "expected a list"),
        (
            TWO_SERVERS.replace('originate_via = "ami"', 'media_connection = "client"'),
            "pbx.asterisk.servers[1].media_connection",
            "one for every server",
        ),
        (
            '[[pbx.asterisk.servers]]\nname = "a"\nbogus = 1\n',
            "pbx.asterisk.servers[0].bogus",
            "unknown key",
        ),
    ],
)
def test_a_bad_server_or_trunk_names_the_key(
    tmp_path: Path, toml: str, key: str, says: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, toml)
    assert exc.value.key == key
    assert says in str(exc.value)


def test_servers_do_not_matter_to_another_pbx_kind(tmp_path: Path) -> None:
    toml = TWO_SERVERS.replace('pbx = "ams"\n', "").replace('pbx = "fra"\n', "")
    s = load(tmp_path, '[pbx]\nkind = "none"\n' + toml)
    assert [t.pbx for t in s.trunks] == ["", ""]


@pytest.mark.parametrize(
    ("toml", "key", "says"),
    [
        ('[pbx.asterisk]\nmedia_host = "not-an-ip"\n', "pbx.asterisk.media_host", "IPv4 or IPv6"),
        ('[pbx.asterisk]\nmedia_host = ""\n', "pbx.asterisk.media_host", "IPv4 or IPv6"),
        (
            '[pbx.asterisk]\nmedia_public_host = "bad host!"\n',
            "pbx.asterisk.media_public_host",
            "an IP address or a host name",
        ),
        (
            "[pbx.asterisk]\nrtp_port_min = 41001\nrtp_port_max = 41001\n",
            "pbx.asterisk.rtp_port_max",
            "with an even port",
        ),
        (
            "[pbx.asterisk]\nrtp_port_min = 41000\nrtp_port_max = 40000\n",
            "pbx.asterisk.rtp_port_max",
            "at least rtp_port_min (41000)",
        ),
        ("[pbx.asterisk]\nrtp_port_min = 80\n", "pbx.asterisk.rtp_port_min", "1024-65534"),
        (
            '[pbx.asterisk]\nmedia_transport = "sip"\n',
            "pbx.asterisk.media_transport",
            "'auto', 'websocket', 'rtp', 'audiosocket'",
        ),
        ("[pbx.asterisk]\naudiosocket_port = 0\n", "pbx.asterisk.audiosocket_port", "1-65535"),
        (
            '[[pbx.asterisk.servers]]\nname = "a"\n[[pbx.asterisk.servers]]\nname = "b"\n'
            'media_public_host = "-bad-"\n',
            "pbx.asterisk.servers[1].media_public_host",
            "an IP address or a host name",
        ),
        (
            '[pbx.asterisk]\nmedia_host = "10.0.0.300"\n[[pbx.asterisk.servers]]\nname = "a"\n',
            "pbx.asterisk.media_host",
            "IPv4 or IPv6",
        ),
    ],
)
def test_bad_media_keys_are_named(tmp_path: Path, toml: str, key: str, says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, toml)
    assert exc.value.key == key
    assert says in str(exc.value)


@pytest.mark.parametrize("transport", ["auto", "websocket", "rtp", "audiosocket"])
def test_media_keys_as_given(tmp_path: Path, transport: str) -> None:
    s = load(
        tmp_path,
        f'[pbx.asterisk]\nmedia_transport = "{transport}"\nmedia_host = "::"\n'
        'media_public_host = "pbx-media.example.com"\nrtp_port_min = 41001\n'
        "rtp_port_max = 41002\naudiosocket_port = 9092\n"
        '[[pbx.asterisk.servers]]\nname = "a"\n'
        '[[pbx.asterisk.servers]]\nname = "b"\nmedia_public_host = "192.0.2.10"\n',
    )
    asterisk = s.pbx.asterisk
    assert asterisk.media_transport == transport
    assert (asterisk.media_host, asterisk.rtp_port_min, asterisk.rtp_port_max) == (
        "::",
        41001,
        41002,
    )
    assert [server.media_transport for server in asterisk.servers] == [transport, transport]
    assert [server.media_public_host for server in asterisk.servers] == [
        "pbx-media.example.com",
        "192.0.2.10",
    ]
    assert {server.audiosocket_port for server in asterisk.servers} == {9092}
