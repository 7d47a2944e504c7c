"""The Asterisk config doctor against the project's own templates, then each thing broken."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from voicedock.config import AsteriskSettings, PbxSettings, Settings, TrunkSettings
from voicedock.doctor import check_asterisk_config
from voicedock.pbx.asterisk.doctor import check, find_problems, load_conf
from voicedock_lab.config import (
    REQUIRED_MODULES,
    find_project_root,
    render_modules_conf,
    render_template,
    select_modules,
)

pytestmark = pytest.mark.unit

ROOT = find_project_root(Path(__file__))
VALUES = {
    "APP_NAME": "voicedock",
    "TRUNK_NAME": "carrier",
    "INTERNAL_TRUNK": "carrier",
    "SIP_BIND": "127.0.0.1",
    "SIP_PORT": "5060",
    "TRUNK_HOST": "127.0.0.2",
    "TRUNK_PORT": "5060",
    "TRUNK_USER": "user1",
    "TRUNK_PASSWORD": "trunk-secret",
    "IP_TRUNK_NAME": "sbc",
    "IP_TRUNK_HOST": "127.0.0.3",
    "IP_TRUNK_PORT": "5060",
    "HTTP_BIND": "127.0.0.1",
    "HTTP_PORT": "8088",
    "ARI_USER": "voicedock",
    "ARI_PASSWORD": "ari-secret-1",
    "AMI_BIND": "127.0.0.1",
    "AMI_PORT": "5038",
    "AMI_PERMIT": "127.0.0.1/255.255.255.255",
    "AMI_USER": "voicedock",
    "AMI_SECRET": "ami-secret-1",
    "MEDIA_WS_HOST": "127.0.0.1",
    "MEDIA_WS_PORT": "8765",
    "RTP_START": "20000",
    "RTP_END": "20999",
}
TEMPLATES = {
    "ari.conf": "sip_configs/asterisk/ari.conf",
    "http.conf": "sip_configs/asterisk/http.conf",
    "manager.conf": "sip_configs/asterisk/manager.conf",
    "rtp.conf": "sip_configs/asterisk/rtp.conf",
    "pjsip_voicedock.conf": "sip_configs/asterisk/pjsip_voicedock.conf",
    "pjsip_trunk_registration.conf": "sip_configs/asterisk/pjsip_trunk_registration.conf",
    "pjsip_trunk_ip.conf": "sip_configs/asterisk/pjsip_trunk_ip.conf",
    "extensions_voicedock.conf": "dialplan/asterisk/extensions_voicedock.conf",
}
ARI_FAMILY = ("res_ari_channels", "res_ari_bridges", "res_ari_events", "res_stasis_recording")


def settings(*, via: str = "ari", targets: list[str] | None = None) -> Settings:
    s = Settings(
        pbx=PbxSettings(asterisk=AsteriskSettings(originate_via=via)),  # type: ignore[arg-type]
        trunks=[TrunkSettings(name="carrier", endpoint="carrier"), TrunkSettings(name="sbc")],
    )
    s.trunks[1].endpoint = "sbc"
    s.policy.internal_targets = targets if targets is not None else ["sales", "agent-*"]
    return s


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """A production-like config dir assembled from the project's templates."""
    for name, relative in TEMPLATES.items():
        text = render_template((ROOT / relative).read_text(), VALUES)
        (tmp_path / name).write_text(text)
    (tmp_path / "pjsip.conf").write_text(
        "#include pjsip_voicedock.conf\n"
        "#include pjsip_trunk_registration.conf\n"
        '#include "pjsip_trunk_ip.conf"\n'
    )
    (tmp_path / "extensions.conf").write_text(
        "[general]\nstatic = yes\n\n#include <extensions_voicedock.conf>\n"
    )
    modules = select_modules((*REQUIRED_MODULES, *ARI_FAMILY)).load
    (tmp_path / "modules.conf").write_text(render_modules_conf(modules))
    return tmp_path


def edit(directory: Path, name: str, old: str, new: str) -> None:
    path = directory / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))


def messages(directory: Path, s: Settings | None = None) -> list[str]:
    return check(directory, s or settings())


def test_project_templates_have_no_problems(etc: Path) -> None:
    assert messages(etc) == []
    assert messages(etc, settings(via="ami")) == []


def test_doctor_cli_uses_the_detailed_check(etc: Path) -> None:
    edit(etc, "http.conf", "enabled = yes", "enabled = no")
    assert check_asterisk_config(etc, settings()) == messages(etc)
    assert any("enabled" in m for m in messages(etc))


def test_parser_handles_templates_includes_and_arrows(tmp_path: Path) -> None:
    (tmp_path / "more.conf").write_text("[b]\nkey => v2 ; comment\n")
    (tmp_path / "pjsip.conf").write_text(
        "[tpl](!)\ntype = endpoint\ndirect_media = no\n"
        "[a](tpl)\ncontext = x\n"
        "#include more.conf\n"
        "[a](+)\naors = a\n"
        "#tryinclude absent.conf\n"
    )
    sections = load_conf(tmp_path, "pjsip.conf")
    assert sections is not None
    assert [s.name for s in sections] == ["a", "b"]  # the template itself is not a section
    a, b = sections
    assert (a.get("type"), a.get("context"), a.get("aors")) == ("endpoint", "x", "a")
    assert (b.get("key"), b.file) == ("v2", "more.conf")


def test_missing_include_is_reported(etc: Path) -> None:
    (etc / "pjsip_trunk_ip.conf").unlink()
    assert any("pjsip_trunk_ip.conf not found" in m for m in messages(etc))


def test_missing_files(tmp_path: Path) -> None:
    found = {(f.file, f.severity) for f in find_problems(tmp_path, settings())}
    assert ("http.conf", "error") in found
    assert ("pjsip.conf", "error") in found
    assert ("manager.conf", "warning") in found  # AMI unused with originate_via = ari
    assert not any(f.file == "modules.conf" for f in find_problems(tmp_path, settings()))


def test_http_disabled_prefix_and_wildcard(etc: Path) -> None:
    edit(etc, "http.conf", "enabled = yes", "enabled = no")
    edit(etc, "http.conf", ";prefix =", "prefix = asterisk")
    edit(etc, "http.conf", "bindaddr = 127.0.0.1", "bindaddr = 0.0.0.0")
    got = messages(etc)
    assert "error: http.conf [general] enabled: must be yes (ARI)" in got
    assert any(m.startswith("error: http.conf [general] prefix") for m in got)
    assert any(m.startswith("warning: http.conf [general] bindaddr: 0.0.0.0") for m in got)
    (etc / "http.conf").write_text((etc / "http.conf").read_text() + "tlsenable = yes\n")
    assert not any("bindaddr" in m for m in messages(etc))


def sessions(directory: Path, s: Settings | None = None) -> list[str]:
    return [m for m in messages(directory, s) if "sessionlimit" in m]


def test_sessionlimit_left_at_asterisks_default_leaves_room_for_67_media_calls(etc: Path) -> None:
    edit(etc, "http.conf", "sessionlimit = 200", ";sessionlimit =")
    assert sessions(etc) == [
        "warning: http.conf [general] sessionlimit: 100 HTTP sessions (not set: Asterisk's "
        "default) leave room for 67 calls with chan_websocket media beside a node's ARI (33): "
        "set it to the calls expected at once plus 33 for each node"
    ]


def test_sessionlimit_below_what_the_trunks_allow(etc: Path) -> None:
    s = settings()
    s.trunks[0].max_channels, s.trunks[1].max_channels = 150, 30
    assert sessions(etc, s) == [
        "warning: http.conf [general] sessionlimit: 200 HTTP sessions leave room for 167 calls "
        "with media beside a node's ARI (33), and the trunks allow 180 at once: set at least "
        "213 (33 more for each other node)"
    ]
    s.trunks[0].max_channels = 100
    assert sessions(etc, s) == []  # 130 calls fit


def test_sessionlimit_counts_only_ari_where_the_media_holds_no_http_session(etc: Path) -> None:
    edit(etc, "http.conf", "sessionlimit = 200", "sessionlimit = 20")
    for media in ({"media_transport": "rtp"}, {"media_connection": "client"}):
        s = settings()
        s.pbx.asterisk = msgspec.structs.replace(s.pbx.asterisk, **media)
        assert sessions(etc, s) == [
            "warning: http.conf [general] sessionlimit: 20 HTTP sessions: a voicedock node's "
            "ARI alone may hold 33"
        ]
    edit(etc, "http.conf", "sessionlimit = 20", "sessionlimit = lots")
    assert sessions(etc) == ["error: http.conf [general] sessionlimit: must be a number"]


def test_ari_user_missing(etc: Path) -> None:
    edit(etc, "ari.conf", "[voicedock]", "[someone]")
    assert any(m.startswith("error: ari.conf [voicedock]: no [voicedock]") for m in messages(etc))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("password = ari-secret-1", "password =", "password: empty"),
        ("password = ari-secret-1", "password = asterisk", "password: a well-known default"),
        ("read_only = no", "read_only = yes", "read_only: must be no"),
    ],
)
def test_ari_user_problems(etc: Path, old: str, new: str, expected: str) -> None:
    edit(etc, "ari.conf", old, new)
    assert any(m.startswith(f"error: ari.conf [voicedock] {expected}") for m in messages(etc))


def test_ari_password_differs_from_settings(etc: Path) -> None:
    s = settings()
    s.pbx.asterisk.ari_password = "another"
    assert any("differs from pbx.asterisk.ari_password" in m for m in messages(etc, s))
    s.pbx.asterisk.ari_password = VALUES["ARI_PASSWORD"]
    assert messages(etc, s) == []


def test_ami_problems_are_errors_only_when_ami_is_used(etc: Path) -> None:
    edit(etc, "manager.conf", "write = system,call,originate,reporting", "write = system,call")
    assert "warning: manager.conf [voicedock] write: missing originate" in messages(etc)
    assert "error: manager.conf [voicedock] write: missing originate" in messages(
        etc, settings(via="ami")
    )


def test_ami_least_privilege(etc: Path) -> None:
    edit(
        etc,
        "manager.conf",
        "read = system,call,reporting,originate,dialplan,agent,user",
        "read = all",
    )
    edit(
        etc,
        "manager.conf",
        "write = system,call,originate,reporting",
        "write = call,originate,command",
    )
    edit(etc, "manager.conf", "deny = 0.0.0.0/0.0.0.0", "")
    got = messages(etc, settings(via="ami"))
    assert any(m.startswith("warning: manager.conf [voicedock] read: 'all'") for m in got)
    assert any(m.startswith("warning: manager.conf [voicedock] write: command") for m in got)
    assert any(m.startswith("warning: manager.conf [voicedock] deny: not set") for m in got)
    assert not any(" permit:" in m for m in got)


def test_ami_disabled_and_user_missing(etc: Path) -> None:
    edit(etc, "manager.conf", "enabled = yes", "enabled = no")
    edit(etc, "manager.conf", "[voicedock]", "[admin]")
    got = messages(etc, settings(via="ami"))
    assert "error: manager.conf [general] enabled: must be yes (AMI)" in got
    assert any(m.startswith("error: manager.conf [voicedock]: no [voicedock]") for m in got)


def test_trunk_endpoint_missing(etc: Path) -> None:
    s = settings()
    s.trunks.append(TrunkSettings(name="other", endpoint="other"))
    assert any(
        m.startswith("error: pjsip.conf [other]: no type = endpoint") for m in messages(etc, s)
    )


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        ("pjsip_trunk_ip.conf", "aors = sbc", "", "error: pjsip_trunk_ip.conf [sbc] aors: not set"),
        ("pjsip_trunk_ip.conf", "aors = sbc", "aors = nope", "[sbc] aors: no type = aor section"),
        ("pjsip_trunk_ip.conf", "context = voicedock-inbound", "", "[sbc] context: not set"),
        ("pjsip_trunk_ip.conf", "match = 127.0.0.3", "", "[sbc]: neither an identify"),
        ("pjsip_trunk_ip.conf", "direct_media = no", "", "[sbc] direct_media: must be no"),
        ("pjsip_trunk_ip.conf", "direct_media = no", "direct_media = yes", "direct_media: must"),
        ("pjsip_trunk_ip.conf", "send_pai", "media_address = 0.0.0.0\nsend_pai", "media_address"),
        ("pjsip_voicedock.conf", "[voicedock-transport]", "[t]", "[sbc] transport: no type"),
    ],
)
def test_endpoint_problems(etc: Path, file: str, old: str, new: str, expected: str) -> None:
    edit(etc, file, old, new)
    assert any(expected in m for m in messages(etc)), messages(etc)


def test_registration_trunk_needs_registration_or_identify(etc: Path) -> None:
    edit(etc, "pjsip_trunk_registration.conf", "type = identify", "type = nothing")
    assert messages(etc) == []  # registration + auth still identify it
    edit(etc, "pjsip_trunk_registration.conf", "type = registration", "type = nothing")
    assert any("[carrier]: neither an identify" in m for m in messages(etc))


def test_outbound_stasis_missing(etc: Path) -> None:
    edit(
        etc,
        "extensions_voicedock.conf",
        "Stasis(${VOICEDOCK_APP},outbound,",
        "Stasis(other,outbound,",
    )
    assert any(m.startswith("warning: extensions.conf: no context runs") for m in messages(etc))
    got = messages(etc, settings(via="ami"))
    assert any(m.startswith("error: extensions.conf: no context runs") for m in got)


def test_inbound_stasis_missing(etc: Path) -> None:
    path = etc / "extensions_voicedock.conf"
    path.write_text(path.read_text().replace("inbound,${EXTEN}", "inbound"))
    expected = "error: extensions.conf [voicedock-inbound]: trunk context has no Stasis"
    assert any(m.startswith(expected) for m in messages(etc))


def on_postgres(node_id: str = "node-1") -> Settings:
    """Settings of a node sharing a PostgreSQL database with others."""
    s = settings()
    s.database.url = "postgresql://voicedock@127.0.0.1/voicedock"
    s.node.id = node_id
    return s


def test_the_template_hands_inbound_calls_to_any_live_node(etc: Path) -> None:
    assert messages(etc, on_postgres()) == []
    assert messages(etc) == []


def test_an_inbound_context_naming_one_application_misses_the_other_nodes(etc: Path) -> None:
    path = etc / "extensions_voicedock.conf"
    old = "Gosub(voicedock-node,s,1(inbound,${EXTEN},${GOSUB_RETVAL}))"
    path.write_text(path.read_text().replace(old, "Stasis(voicedock,inbound,${EXTEN})"))
    assert messages(etc) == []  # one node on SQLite: its application is "voicedock"
    expected = (
        "error: extensions.conf [voicedock-inbound]: trunk context hands inbound calls to "
        "Stasis(voicedock) alone, and this node's ARI application is voicedock-node-1: use "
        "Gosub(voicedock-node,s,1(inbound,${EXTEN})) so that every live node answers them"
    )
    assert expected in messages(etc, on_postgres())
    path.write_text(
        path.read_text().replace("Stasis(voicedock,inbound", "Stasis(voicedock-node-1,inbound")
    )
    assert messages(etc, on_postgres()) == []


def test_the_node_context_must_read_the_live_nodes_list(etc: Path) -> None:
    edit(etc, "extensions_voicedock.conf", "GLOBAL(VOICEDOCK_APPS)", "GLOBAL(APPS)")
    expected = (
        "error: extensions.conf [voicedock-inbound]: [voicedock-node] does not try the live "
        "nodes' applications (VOICEDOCK_APPS)"
    )
    assert any(m.startswith(expected) for m in messages(etc, on_postgres()))
    edit(etc, "extensions_voicedock.conf", "[voicedock-node]", "[other-node]")
    expected = "Gosub(voicedock-node,...) but there is no [voicedock-node] context"
    assert any(expected in m for m in messages(etc, on_postgres()))


def test_a_failed_transfer_must_return_to_the_serving_node(etc: Path) -> None:
    edit(
        etc,
        "extensions_voicedock.conf",
        "Stasis(${VOICEDOCK_APP},transfer-failed,",
        "Stasis(voicedock,transfer-failed,",
    )
    assert messages(etc) == []
    assert any("does not read VOICEDOCK_APP" in m for m in messages(etc, on_postgres()))


def test_an_application_name_that_is_no_token_is_an_error(etc: Path) -> None:
    s = on_postgres()
    s.pbx.asterisk.app = "voice dock"
    assert any("pbx.asterisk.app" in m for m in messages(etc, s))


def test_transfer_context_and_internal_targets(etc: Path) -> None:
    assert any("'billing'" in m for m in messages(etc, settings(targets=["billing"])))
    edit(etc, "extensions_voicedock.conf", "[voicedock-transfers]", "[transfers]")
    expected = "error: extensions.conf [voicedock-transfers]: missing"
    assert any(m.startswith(expected) for m in messages(etc))


def test_modules_autoload_no_needs_the_list(etc: Path) -> None:
    edit(etc, "modules.conf", "load = chan_websocket.so\n", "")
    assert messages(etc) == []  # the calls' audio goes over RTP (media_transport = "auto")
    edit(etc, "modules.conf", "load = chan_rtp.so\n", "")
    assert any("chan_rtp is not loaded" in m for m in messages(etc))
    forced = settings()
    forced.pbx.asterisk.media_transport = "websocket"
    assert any("chan_websocket is not loaded" in m for m in messages(etc, forced))
    (etc / "modules.conf").write_text("[modules]\nautoload = yes\nnoload => res_ari.so\n")
    assert messages(etc) == ["error: modules.conf [modules] noload: res_ari is needed"]


def test_modules_of_the_media_transport_named(etc: Path) -> None:
    """RTP and AudioSocket need their channel drivers (media_transport), not chan_websocket."""
    edit(etc, "modules.conf", "load = chan_websocket.so\n", "")
    rtp = settings()
    rtp.pbx.asterisk.media_transport = "rtp"
    assert messages(etc, rtp) == []
    edit(etc, "modules.conf", "load = res_rtp_asterisk.so\n", "")
    assert messages(etc, rtp) == [
        "error: modules.conf [modules] load: autoload = no and res_rtp_asterisk is not loaded"
    ]
    audiosocket = settings()
    audiosocket.pbx.asterisk.media_transport = "audiosocket"
    edit(etc, "modules.conf", "load = chan_audiosocket.so\n", "")
    assert any("chan_audiosocket is not loaded" in m for m in messages(etc, audiosocket))


def _lab_etc_dirs() -> list[Path]:
    cache = Path(
        os.environ.get("VOICEDOCK_LAB_CACHE", Path.home() / ".cache/voicedock/asterisk-chroot")
    )
    return sorted((cache / "root/var/lib/voicedock-lab").glob("*/etc/pjsip.conf"))


def test_lab_rendered_config_has_no_errors() -> None:
    found = _lab_etc_dirs()
    if not found:
        pytest.skip("no lab instance directory")
    s = settings()
    s.trunks = [TrunkSettings(name="carrier", endpoint="carrier")]
    s.policy.internal_targets = ["sales", "support"]
    problems = find_problems(found[-1].parent, s)
    assert [str(p) for p in problems if p.severity == "error"] == []


def test_unfilled_placeholders_are_errors(etc: Path) -> None:
    (etc / "ari.conf").write_text((ROOT / "sip_configs/asterisk/ari.conf").read_text())
    got = messages(etc)
    assert (
        "error: ari.conf [${ARI_USER}]: template placeholder ${ARI_USER} was never filled in" in got
    )
    assert not any("${EXTEN}" in m for m in got)  # dialplan variables are Asterisk's own
