"""``voicedock doctor`` on the lab Asterisk 16.28, as an operator runs it with the example
configuration: it names the version and the transport the calls' audio will take (RTP: 16 has
no chan_websocket), says what to install when the server can carry no call audio at all (its
chan_rtp unloaded: neither chan_websocket nor externalMedia's RTP), and names a trunk whose
carrier's host does not resolve (the lab's ``nowhere`` endpoint: ``sip.carrier.invalid``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicedock.cli import main
from voicedock_lab.server import LabAsterisk

pytestmark = pytest.mark.asterisk16

EXAMPLE = Path(__file__).resolve().parents[2] / "voicedock.example.toml"


@pytest.fixture
def config(lab16: LabAsterisk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example configuration pointed at the lab, as the README's environment does."""
    user, password = lab16.ari_credentials
    monkeypatch.setenv("VOICEDOCK_PBX__ASTERISK__ARI_URL", lab16.ari_url)
    monkeypatch.setenv("VOICEDOCK_PBX__ASTERISK__ARI_USER", user)
    monkeypatch.setenv("VOICEDOCK_PBX__ASTERISK__ARI_PASSWORD", password)
    path = tmp_path / "voicedock.toml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def doctor(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["doctor", "--config", str(config)])
    return code, capsys.readouterr().out.strip().splitlines()


def test_doctor_names_the_version_and_the_rtp_transport(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = doctor(config, capsys)
    assert (code, lines[-1]) == (0, "OK"), lines
    (said,) = [line for line in lines if line.startswith("asterisk: ")]
    assert said.startswith("asterisk: Asterisk 16.28.0"), said
    assert "media over RTP (no chan_websocket: it exists from Asterisk 20.16" in said
    assert "Asterisk sends RTP to 127.0.0.1, UDP 40000-40999" in said


def test_doctor_says_what_to_install_when_no_transport_is_there(
    lab16: LabAsterisk, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "unloaded" in lab16.cli("module unload chan_rtp.so").lower()
    try:
        code, lines = doctor(config, capsys)
    finally:
        lab16.cli("module load chan_rtp.so")
    assert code == 1
    (error,) = [line for line in lines if line.startswith("error: asterisk: ")]
    assert "can carry no call audio" in error, error
    assert "no chan_websocket: it exists from Asterisk 20.16, 21.11, 22.6 and 23.0 on" in error
    assert "chan_rtp.so is not loaded (modules.conf: load = chan_rtp.so)" in error
    assert "no chan_audiosocket: it exists from Asterisk 18.0 on" in error
    assert doctor(config, capsys)[0] == 0  # loaded again: carried over RTP


def test_doctor_names_a_trunk_whose_host_does_not_resolve(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('endpoint = "carrier"', 'endpoint = "nowhere"', 1))
    code, lines = doctor(config, capsys)
    assert code == 1
    assert (
        "error: asterisk: trunks[0] (carrier): the host 'sip.carrier.invalid' of its contact "
        "(sip:sip.carrier.invalid:5060) does not resolve: every call on the trunk would fail "
        "(congestion)"
    ) in lines, lines
