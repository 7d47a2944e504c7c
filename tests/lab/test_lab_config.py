"""Rendering the lab's Asterisk config: templating, module list, loopback-only binds."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from voicedock_lab.config import (
    REQUIRED_MODULES,
    TEMPLATE_FILES,
    find_project_root,
    placeholders,
    render_files,
    render_modules_conf,
    render_template,
    select_modules,
    template_values,
)
from voicedock_lab.errors import LabError
from voicedock_lab.settings import LabSettings

pytestmark = pytest.mark.unit

PROJECT = find_project_root(Path(__file__))
MODDIR = "/usr/lib/x86_64-linux-gnu/asterisk/modules"
ALL_MODULES = [*REQUIRED_MODULES, "res_websocket_client", "res_ari_channels", "res_stasis_test"]


def settings() -> LabSettings:
    return LabSettings(
        cache_dir=Path("/tmp/lab-cache"),
        instance="unit",
        http_port=18088,
        ami_port=15038,
        sip_port=15060,
        carrier_sip_port=15070,
        deadtrunk_port=15099,
        media_ws_port=18765,
    )


def rendered() -> dict[str, str]:
    return render_files(settings(), PROJECT, ALL_MODULES, MODDIR)


def test_render_template_replaces_known_names_only() -> None:
    text = "bind = ${SIP_BIND}:${SIP_PORT}\nexten => _X.,1,Dial(PJSIP/${EXTEN}@${TRUNK_NAME})"
    out = render_template(text, {"SIP_BIND": "127.0.0.1", "SIP_PORT": "5060", "TRUNK_NAME": "t"})
    assert out == "bind = 127.0.0.1:5060\nexten => _X.,1,Dial(PJSIP/${EXTEN}@t)"


def test_every_placeholder_of_the_templates_gets_a_lab_value() -> None:
    values = template_values(settings())
    for name, text in rendered().items():
        left = placeholders(text) & set(values)
        assert not left, f"{name} still has {left}"
        if not name.startswith("extensions"):
            assert "${" not in text, name


def test_dialplan_keeps_asterisk_variables() -> None:
    files = rendered()
    assert (
        "Gosub(voicedock-node,s,1(inbound,${EXTEN},${GOSUB_RETVAL}))"
        in files["extensions_voicedock.conf"]
    )
    assert "Stasis(voicedock,${ARG1},${ARG2},${ARG3})" in files["extensions_voicedock.conf"]
    assert "Dial(PJSIP/${EXTEN}@carrier,30)" in files["extensions_voicedock.conf"]
    recordings = settings().recordings_path
    assert f"LAB_RECDIR = {recordings}" in files["extensions.conf"]


def test_everything_binds_loopback_on_the_chosen_ports() -> None:
    files = rendered()
    assert "bindaddr = 127.0.0.1\nbindport = 18088" in files["http.conf"]
    assert "port = 15038" in files["manager.conf"]
    assert "bindaddr = 127.0.0.1" in files["manager.conf"]
    binds = re.findall(r"^bind = (.*)$", files["pjsip.conf"], re.M)
    assert binds == ["127.0.0.1:15060", "127.0.0.1:15070"]
    # Two transports on one IP: identify must include the port.
    matches = re.findall(r"^match = (.*)$", files["pjsip.conf"], re.M)
    assert sorted(matches) == ["127.0.0.1:15060", "127.0.0.1:15070"]
    assert "contact = sip:127.0.0.1:15099" in files["pjsip.conf"]
    assert files["pjsip.conf"].count("media_address = 127.0.0.1") == 1  # in the shared template
    assert "bind_rtp_to_media_address = yes" in files["pjsip.conf"]
    assert "0.0.0.0" not in files["http.conf"] + files["pjsip.conf"]


def test_asterisk_conf_points_writable_dirs_into_the_instance() -> None:
    text = rendered()["asterisk.conf"]
    for key in ("astetcdir", "astrundir", "astspooldir", "astdbdir", "astlogdir"):
        assert re.search(rf"^{key} => /var/lib/voicedock-lab/unit/", text, re.M), key
    assert f"astmoddir => {MODDIR}" in text


def test_far_parties_send_nothing_between_their_words_unless_asked() -> None:
    assert re.search(r"^transmit_silence = no$", rendered()["asterisk.conf"], re.M)
    transmitting = replace(settings(), transmit_silence=True)
    text = render_files(transmitting, PROJECT, ALL_MODULES, MODDIR)["asterisk.conf"]
    assert re.search(r"^transmit_silence = yes$", text, re.M)
    # A running lab's settings say how it runs (down/status read them back).
    assert LabSettings.from_json(transmitting.to_json()).transmit_silence


def test_module_selection_is_explicit_with_families_and_optionals() -> None:
    selection = select_modules(ALL_MODULES)
    assert selection.missing == ()
    assert "res_websocket_client" in selection.load
    assert "res_ari_channels" in selection.load
    assert "res_stasis_test" not in selection.load
    assert len(selection.load) == len(set(selection.load))
    conf = render_modules_conf(selection.load)
    assert "autoload = no" in conf
    for needed in ("chan_websocket", "app_senddtmf", "app_mixmonitor", "chan_pjsip", "app_stack"):
        assert f"load = {needed}.so" in conf


def test_missing_required_module_is_an_error() -> None:
    available = [m for m in ALL_MODULES if m != "chan_websocket"]
    assert select_modules(available).missing == ("chan_websocket",)
    with pytest.raises(LabError, match="chan_websocket"):
        render_files(settings(), PROJECT, available, MODDIR)


def test_every_template_file_exists() -> None:
    for relative in TEMPLATE_FILES.values():
        assert (PROJECT / relative).is_file(), relative


def test_websocket_client_points_voicedock_media_at_the_media_port() -> None:
    """Client media mode: Asterisk dials ws://127.0.0.1:<media_ws_port>/media, subprotocol media."""
    conf = rendered()["websocket_client.conf"]
    assert "[voicedock_media]" in conf
    assert "uri = ws://127.0.0.1:18765/media" in conf
    assert "protocols = media" in conf
    assert "type = websocket_client" in conf
