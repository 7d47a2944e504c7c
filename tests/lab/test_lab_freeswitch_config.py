"""The lab FreeSWITCH's generated config, build key and CLI (no FreeSWITCH needed)."""

from __future__ import annotations

import argparse
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from voicedock_lab import cli
from voicedock_lab.config import find_project_root
from voicedock_lab.errors import LabError
from voicedock_lab.freeswitch_build import FreeswitchBuild, FreeswitchSources, build_script
from voicedock_lab.freeswitch_config import (
    UTTERANCE,
    FreeswitchLabSettings,
    render_freeswitch_xml,
)
from voicedock_lab.utterances import APPOINTMENT, SAY_YES, TALK_OVER

pytestmark = pytest.mark.unit


def rendered(settings: FreeswitchLabSettings) -> ET.Element:
    return ET.fromstring(render_freeswitch_xml(settings, find_project_root()))


def test_config_is_one_xml_document_on_loopback_with_our_password() -> None:
    settings = FreeswitchLabSettings(esl_port=18021, sip_port=15080, carrier_sip_port=15090)
    text = render_freeswitch_xml(settings, find_project_root())
    assert not re.search(r"\$\{[A-Z][A-Z0-9_]*\}", text), "an unrendered placeholder"
    root = ET.fromstring(text)
    esl = root.find(".//configuration[@name='event_socket.conf']/settings")
    assert esl is not None
    params = {p.get("name"): p.get("value") for p in esl}
    assert params["listen-ip"] == "127.0.0.1"
    assert params["listen-port"] == "18021"
    assert params["password"] == settings.esl_password != "ClueCon"
    for profile in root.iterfind(".//profile"):
        ips = {
            p.get("value")
            for p in profile.iterfind("settings/param")
            if p.get("name", "").endswith("-ip")
        }
        assert ips <= {"127.0.0.1"}, ips


def test_config_uses_the_project_templates_and_the_lab_parties() -> None:
    root = rendered(FreeswitchLabSettings(carrier_sip_port=15090))
    contexts = {c.get("name") for c in root.iterfind(".//section[@name='dialplan']/context")}
    assert contexts == {"voicedock_inbound", "voicedock_transfer", "lab_carrier"}
    gateway = root.find(".//profile[@name='voicedock']/gateways/gateway[@name='carrier']")
    assert gateway is not None
    proxy = {p.get("name"): p.get("value") for p in gateway}["proxy"]
    assert proxy == "127.0.0.1:15090"
    acl = {e.get("name") for e in root.iterfind(".//network-lists/list")}
    assert acl == {"voicedock_esl", "voicedock_carriers"}


def test_speaking_parties_play_the_lab_utterances_from_the_instance_sounds() -> None:
    settings = FreeswitchLabSettings(instance="talk")
    root = rendered(settings)
    played = {
        a.get("data")
        for a in root.iterfind(".//context[@name='lab_carrier']/extension/condition/action")
        if a.get("application") == "playback"
    }
    sounds = "/var/lib/voicedock-lab/talk/sounds"
    assert {f"{sounds}/{u.name}.wav" for u in (TALK_OVER, APPOINTMENT, SAY_YES)} <= played


@pytest.mark.parametrize(("transmit", "value"), [(False, "0"), (True, "-1")])
def test_every_party_sends_silence_between_its_words_only_if_the_lab_says(
    transmit: bool, value: str
) -> None:
    root = rendered(FreeswitchLabSettings(transmit_silence=transmit))
    first = root.find(".//context[@name='lab_carrier']/extension")
    assert first is not None
    assert first.get("continue") == "true"  # then each party's own extension
    condition = first.find("condition")
    assert condition is not None
    expression = re.compile(condition.get("expression", ""))  # PCRE, as Python's re reads it
    for party in (UTTERANCE, "sales", "warmsayyes", "lab_caller_speaks"):
        assert expression.match(party), party  # every party, the inbound callers too
    for refusing in ("+31610000404", "+31610000486"):
        assert not expression.match(refusing), refusing  # 404 keeps having no extension
    actions = [(a.get("application"), a.get("data")) for a in condition]
    assert actions == [("set", f"send_silence_when_idle={value}")]


def test_settings_refuse_the_stock_password_and_bad_names() -> None:
    with pytest.raises(ValueError, match="ClueCon"):
        FreeswitchLabSettings(esl_password="ClueCon")
    with pytest.raises(ValueError, match="instance"):
        FreeswitchLabSettings(instance="../x")
    assert FreeswitchLabSettings().esl_password != FreeswitchLabSettings().esl_password


def test_settings_round_trip_through_json() -> None:
    settings = FreeswitchLabSettings(instance="x").with_free_ports()
    assert FreeswitchLabSettings.from_json(settings.to_json()) == settings


def fake_sources(tmp_path: Path, content: bytes = b"x") -> Path:
    tmp_path.mkdir(parents=True)
    for name in ("freeswitch-1.11.1", "sofia-sip-1", "spandsp-2", "mod_audio_stream-3", "libwsc-4"):
        (tmp_path / f"{name}.tar.xz").write_bytes(content)
    return tmp_path


def test_build_key_follows_the_tarballs(tmp_path: Path) -> None:
    first = FreeswitchSources.find(fake_sources(tmp_path / "a"))
    same = FreeswitchSources.find(fake_sources(tmp_path / "b"))
    other = FreeswitchSources.find(fake_sources(tmp_path / "c", b"y"))
    assert first.key() == same.key() != other.key()
    entry = FreeswitchBuild.for_sources(first, tmp_path / "cache")
    assert entry.root == tmp_path / "cache" / f"freeswitch-{first.key()}" / "root"
    assert not entry.is_built()
    script = build_script(first)
    assert "mod_loopback" in script
    assert "cd /build/freeswitch-1.11.1" in script


def test_missing_sources_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="FreeSWITCH sources not found"):
        FreeswitchSources.find(tmp_path / "absent")
    (tmp_path / "freeswitch-1.tar.xz").write_bytes(b"")
    with pytest.raises(LabError, match="sofia-sip"):
        FreeswitchSources.find(tmp_path)


def test_cli_takes_pbx_freeswitch_and_its_ports() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["lab", "up", "--pbx", "freeswitch", "--esl-port", "18021"])
    assert (args.pbx, args.esl_port) == ("freeswitch", 18021)


def test_status_of_a_stopped_freeswitch_lab_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEDOCK_FREESWITCH_SOURCES", str(fake_sources(tmp_path / "src")))
    code = cli.main(["lab", "status", "--pbx", "freeswitch", "--cache-dir", str(tmp_path)])
    assert code == 3
    out = capsys.readouterr().out
    assert "built: False" in out
    assert "running: False" in out


def test_a_failed_build_leaves_no_half_built_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicedock_lab import freeswitch_build

    sources = FreeswitchSources.find(fake_sources(tmp_path / "src"))
    steps: list[str] = []

    def failing_step(
        target: FreeswitchBuild, what: str, argv: list[str], env: object = None
    ) -> None:
        steps.append(what)
        (target.entry_dir / "root.partial" / "etc/apt/apt.conf.d").mkdir(
            parents=True, exist_ok=True
        )
        (target.entry_dir / "root.partial/usr/sbin").mkdir(parents=True, exist_ok=True)
        if what == "apt-get install":
            raise LabError("apt-get install failed")

    monkeypatch.setattr(freeswitch_build, "ensure_debootstrap", lambda log=True: None)
    monkeypatch.setattr(freeswitch_build, "_run_logged", failing_step)
    with pytest.raises(LabError, match="apt-get install"):
        freeswitch_build.build(sources, tmp_path / "cache", log=False)
    entry = FreeswitchBuild.for_sources(sources, tmp_path / "cache")
    assert steps[:3] == ["debootstrap", "apt-get update", "apt-get install"]
    assert not (entry.entry_dir / "root.partial").exists()
    assert not entry.root.exists()
    assert not entry.is_built()


def test_the_two_labs_of_one_process_get_disjoint_rtp_ranges() -> None:
    """Both labs run in one test session; a PBX binds RTP ports only during calls, so the
    ranges must differ by construction, not by "free right now"."""
    from voicedock_lab.settings import LabSettings

    asterisk = LabSettings().with_free_ports()
    freeswitch = FreeswitchLabSettings().with_free_ports()
    asterisk_ports = set(range(asterisk.rtp_start, asterisk.rtp_end + 1))
    freeswitch_ports = set(range(freeswitch.rtp_start, freeswitch.rtp_end + 1))
    assert not asterisk_ports & freeswitch_ports
