"""``voicedock doctor`` on the real lab FreeSWITCH, configured as a user would: the shipped
``voicedock.example.toml`` (trunk ``carrier``, number +31850835037: what the lab renders into
the production templates) with ``pbx.kind = "freeswitch"`` and the lab's Event Socket from the
environment; then the same with one thing broken at a time."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from voicedock.cli import main
from voicedock_lab.freeswitch import LabFreeswitch

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.timeout(60)]

EXAMPLE = Path(__file__).resolve().parents[2] / "voicedock.example.toml"


Doctor = Callable[..., tuple[int, str]]


@pytest.fixture
def doctor(
    freeswitch_lab: LabFreeswitch,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Doctor:
    """``voicedock doctor --config <the example, with replace applied>``: (exit code, output)."""

    def run(
        *, password: str | None = None, port: int | None = None, replace: tuple[str, str] = ("", "")
    ) -> tuple[int, str]:
        config = tmp_path / "voicedock.toml"
        config.write_text(EXAMPLE.read_text().replace(*replace), encoding="utf-8")
        monkeypatch.setenv("VOICEDOCK_PBX__KIND", "freeswitch")
        port_value = str(port or freeswitch_lab.esl_port)
        monkeypatch.setenv("VOICEDOCK_PBX__FREESWITCH__ESL_PORT", port_value)
        password_value = password or freeswitch_lab.esl_password
        monkeypatch.setenv("VOICEDOCK_PBX__FREESWITCH__ESL_PASSWORD", password_value)
        capsys.readouterr()
        code = main(["doctor", "--config", str(config)])
        return code, capsys.readouterr().out

    return run


def test_doctor_passes_on_the_lab(doctor: Doctor) -> None:
    assert doctor() == (0, "OK\n")


def test_doctor_reports_a_wrong_password(doctor: Doctor) -> None:
    code, out = doctor(password="notTheLabs1")
    assert code == 1
    assert "refused the password (pbx.freeswitch.esl_password" in out


def test_doctor_reports_an_unreachable_event_socket(doctor: Doctor) -> None:
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    code, out = doctor(port=port)
    assert code == 1
    assert f"cannot reach the Event Socket at 127.0.0.1:{port}" in out


def test_doctor_reports_a_missing_gateway(doctor: Doctor) -> None:
    code, out = doctor(replace=('endpoint = "carrier"', 'endpoint = "nosuchtrunk"'))
    assert code == 1
    assert "trunks[0] (carrier): FreeSWITCH has no sofia gateway 'nosuchtrunk'" in out


def test_doctor_reports_a_number_the_dialplan_does_not_park(doctor: Doctor) -> None:
    code, out = doctor(replace=('number = "+31850835037"', 'number = "+31850835099"'))
    assert code == 1
    # The lab's voicedock_inbound ends in unknown_did (respond 404) for numbers not ours.
    assert "+318***99 reaches extension 'unknown_did' in context 'voicedock_inbound'" in out
