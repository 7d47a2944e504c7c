"""The ``lab`` subcommands parse as documented and report a stopped lab."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from voicedock_lab import cli

pytestmark = pytest.mark.unit


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_up_accepts_ports_and_instance() -> None:
    args = parse(["lab", "up", "--instance", "ci", "--http-port", "18088", "--free-ports"])
    assert (args.lab_command, args.instance, args.http_port, args.free_ports) == (
        "up",
        "ci",
        18088,
        True,
    )
    assert args.handler is cli.run


def test_cli_takes_one_quoted_command() -> None:
    args = parse(["lab", "cli", "core show channels"])
    assert args.cli_command == "core show channels"


def test_status_of_a_never_provisioned_cache_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["lab", "status", "--cache-dir", str(tmp_path)])
    assert code == 3
    out = capsys.readouterr().out
    assert "provisioned: False" in out
    assert "running: False" in out


def test_cli_on_a_stopped_lab_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["lab", "cli", "--cache-dir", str(tmp_path), "core show uptime"]) == 1
    assert "not running" in capsys.readouterr().err


def test_up_takes_the_media_port_over_a_free_one() -> None:
    """Client media mode: Asterisk must dial the port voicedock serves /media on."""
    args = parse(["lab", "up", "--free-ports", "--media-ws-port", "18080"])
    settings = cli._settings(args)
    assert settings.media_ws_port == 18080
    assert settings.http_port != 8088  # the others are still free ones


def test_up_runs_far_parties_that_send_nothing_between_words_unless_told() -> None:
    assert not cli._settings(parse(["lab", "up"])).transmit_silence
    assert cli._settings(parse(["lab", "up", "--transmit-silence"])).transmit_silence
    freeswitch = cli._freeswitch_lab(parse(["lab", "up", "--pbx", "freeswitch"]))
    assert not freeswitch.settings.transmit_silence
    argv = ["lab", "up", "--pbx", "freeswitch", "--transmit-silence", "--free-ports"]
    assert cli._freeswitch_lab(parse(argv)).settings.transmit_silence
