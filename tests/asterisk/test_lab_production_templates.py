"""The production templates in sip_configs/asterisk/ load in a real Asterisk 22.

A second lab instance runs with the production transport and both trunk flavours appended to
its PJSIP config; Asterisk must accept every object in them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicedock_lab.config import find_project_root, render_template, template_values
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import LabSettings

pytestmark = pytest.mark.asterisk

PROJECT = find_project_root(Path(__file__))


@pytest.fixture
def production_lab(lab: LabAsterisk, tmp_path: Path) -> Iterator[LabAsterisk]:
    settings = LabSettings(instance=f"pytest-prod-{os.getpid()}").with_free_ports()
    project = tmp_path / "project"
    shutil.copytree(PROJECT / "sip_configs", project / "sip_configs")
    shutil.copytree(PROJECT / "dialplan", project / "dialplan")
    prod_sip_port = settings.with_free_ports().sip_port
    values = template_values(settings) | {
        "SIP_PORT": str(prod_sip_port),
        "TRUNK_NAME": "prodtrunk",
        "TRUNK_HOST": "127.0.0.1",
        "TRUNK_PORT": str(lab.settings.deadtrunk_port),  # nothing listens: no side effects
        "TRUNK_USER": "31850835037",
        "TRUNK_PASSWORD": "not-a-secret",
        "IP_TRUNK_NAME": "iptrunk",
        "IP_TRUNK_HOST": "127.0.0.1",
        "IP_TRUNK_PORT": str(lab.settings.sip_port),
    }
    extra = "".join(
        render_template((PROJECT / "sip_configs/asterisk" / name).read_text(), values)
        for name in ("pjsip_voicedock.conf", "pjsip_trunk_registration.conf", "pjsip_trunk_ip.conf")
    )
    lab_pjsip = project / "sip_configs/lab/pjsip.conf"
    lab_pjsip.write_text(lab_pjsip.read_text() + "\n" + extra)
    instance = LabAsterisk(settings, project_root=project, verbose=False)
    instance.up(timeout=60)
    try:
        yield instance
    finally:
        instance.down()
        if os.environ.get("VOICEDOCK_LAB_KEEP") != "1":
            shutil.rmtree(settings.instance_dir, ignore_errors=True)


def test_production_trunks_and_transport_load(production_lab: LabAsterisk) -> None:
    endpoints = production_lab.cli("pjsip show endpoints")
    assert "Endpoint:  prodtrunk" in endpoints
    assert "Endpoint:  iptrunk" in endpoints
    transports = production_lab.cli("pjsip show transports")
    assert "voicedock-transport" in transports
    registrations = production_lab.cli("pjsip show registrations")
    assert "prodtrunk/sip:127.0.0.1" in registrations
    log = production_lab.log_tail(400)
    assert "prodtrunk" not in "\n".join(line for line in log.splitlines() if "ERROR" in line), log
