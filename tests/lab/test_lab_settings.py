"""LabSettings validation, free ports and the saved-settings round trip."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from voicedock_lab.settings import LabSettings, free_ports

pytestmark = pytest.mark.unit


def test_defaults_are_loopback_and_documented_credentials() -> None:
    s = LabSettings(cache_dir=Path("/tmp/c"))
    assert s.bind_address == "127.0.0.1"
    assert s.ari_url == "http://127.0.0.1:8088/ari"
    assert s.ari_events_url == "ws://127.0.0.1:8088/ari/events?app=voicedock"
    assert s.chroot_dir == Path("/tmp/c/root")
    assert s.recordings_dir == Path("/tmp/c/root/var/lib/voicedock-lab/default/recordings")


@pytest.mark.parametrize(
    "kwargs",
    [{"instance": "../evil"}, {"instance": ""}, {"sip_port": 5038}, {"http_port": 0}],
)
def test_invalid_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="lab"):
        LabSettings(**kwargs)  # type: ignore[arg-type]


def test_rtp_range_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="rtp"):
        LabSettings(rtp_start=30000, rtp_end=20000)


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(6)
    assert len(set(ports)) == 6
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_with_free_ports_changes_every_port() -> None:
    base = LabSettings()
    moved = base.with_free_ports()
    assert moved.http_port != base.http_port or moved.sip_port != base.sip_port
    assert moved.rtp_end - moved.rtp_start == 199
    assert moved.rtp_start % 2 == 0


def test_json_round_trip_and_saved_lookup(tmp_path: Path) -> None:
    s = LabSettings(cache_dir=tmp_path, instance="x", http_port=18088)
    assert LabSettings.from_json(s.to_json()) == s
    fresh = LabSettings(cache_dir=tmp_path, instance="x")
    assert fresh.saved_or_self() == fresh  # nothing saved yet
    s.saved_path.parent.mkdir(parents=True)
    s.saved_path.write_text(s.to_json())
    assert fresh.saved_or_self().http_port == 18088
