"""``voicedock lab up | down | status | cli "<command>"``: the lab PBX from the shell."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from voicedock_lab.asterisk_versions import DEFAULT_VERSION, VERSIONS
from voicedock_lab.errors import LabError
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import FreeswitchLabSettings
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import LabSettings

# media_ws_port: voicedock's API port, where Asterisk dials /media in client media mode.
_PORT_OPTIONS = ("http_port", "ami_port", "sip_port", "carrier_sip_port", "media_ws_port")
# --pbx freeswitch: the Event Socket and the two sofia profiles.
_FREESWITCH_PORT_OPTIONS = ("esl_port", "sip_port", "carrier_sip_port")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``lab`` command (with its own subcommands) to a parent CLI."""
    lab = subparsers.add_parser("lab", help="run the lab PBX (Asterisk or FreeSWITCH) on 127.0.0.1")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--instance", default="default", help="instance name (default: default)")
    common.add_argument("--cache-dir", type=Path, help="chroot cache dir")
    common.add_argument(
        "--pbx",
        choices=("asterisk", "freeswitch"),
        default="asterisk",
        help="which lab PBX (default: asterisk; freeswitch builds from its upstream sources)",
    )
    common.add_argument(
        "--asterisk",
        choices=VERSIONS,
        help=f"which Asterisk: {DEFAULT_VERSION} (Debian testing, the default for up) or 16 "
        "(Debian bullseye's 16.28), each in a chroot of its own; down, status and cli "
        "without it find the running instance",
    )
    commands = lab.add_subparsers(dest="lab_command", required=True)
    up = commands.add_parser(
        "up", parents=[common], help="provision (once, cached) and start Asterisk"
    )
    for option in _PORT_OPTIONS:
        up.add_argument(f"--{option.replace('_', '-')}", type=int, dest=option)
    for option in _FREESWITCH_PORT_OPTIONS:
        if option not in _PORT_OPTIONS:
            up.add_argument(f"--{option.replace('_', '-')}", type=int, dest=option)
    up.add_argument("--free-ports", action="store_true", help="pick free ports at random")
    up.add_argument(
        "--transmit-silence",
        action="store_true",
        help="the far parties send silence between their words (default: nothing, as with "
        "silence suppression on a trunk or phone)",
    )
    up.add_argument(
        "--no-utterances",
        action="store_true",
        help="skip the speaking parties' sounds (they need the offline TTS, Piper)",
    )
    commands.add_parser("down", parents=[common], help="stop Asterisk")
    commands.add_parser(
        "status", parents=[common], help="show whether the lab runs (exit 3 if not)"
    )
    cli = commands.add_parser(
        "cli", parents=[common], help='run an Asterisk CLI command, e.g. "core show channels"'
    )
    cli.add_argument("cli_command", metavar="command", help="the CLI command, quoted")
    lab.set_defaults(handler=run)


def _settings(args: argparse.Namespace) -> LabSettings:
    version = getattr(args, "asterisk", None)
    base = LabSettings(instance=args.instance, asterisk=version or DEFAULT_VERSION)
    if args.cache_dir is not None:
        base = dataclasses.replace(base, cache_dir=args.cache_dir)
    if args.lab_command != "up":
        return base.saved_or_self() if version is not None else _running_version(base)
    if args.free_ports:
        base = base.with_free_ports()
    if args.transmit_silence:
        base = dataclasses.replace(base, transmit_silence=True)
    # A port given explicitly wins over a free one (e.g. the media port voicedock serves on).
    overrides = {k: getattr(args, k) for k in _PORT_OPTIONS if getattr(args, k) is not None}
    return dataclasses.replace(base, **overrides) if overrides else base


def _running_version(base: LabSettings) -> LabSettings:
    """The saved settings of the instance's Asterisk version that runs (the default version's
    first), else the default version's."""
    for version in VERSIONS:
        saved = dataclasses.replace(base, asterisk=version).saved_or_self()
        if LabAsterisk(saved, verbose=False).running():
            return saved
    return base.saved_or_self()


def run(args: argparse.Namespace) -> int:
    if getattr(args, "pbx", "asterisk") == "freeswitch":
        return _run_freeswitch(args)
    try:
        speaking = not getattr(args, "no_utterances", False)
        lab = LabAsterisk(_settings(args), utterances=speaking)
        if args.lab_command == "up":
            started = time.monotonic()
            lab.up()
            spent = time.monotonic() - started
            print(f"lab ready in {spent:.1f} s (Asterisk {lab.settings.asterisk})")
            _print_endpoints(lab)
        elif args.lab_command == "down":
            lab.down()
        elif args.lab_command == "status":
            status = lab.status()
            print(f"asterisk: {lab.settings.asterisk} (Debian {lab.settings.debian_suite})")
            print(f"provisioned: {status.provisioned}")
            print(f"running: {status.running} (pid {status.pid})")
            if status.running:
                _print_endpoints(lab)
                print(status.detail)
            return 0 if status.running else 3
        elif args.lab_command == "cli":
            sys.stdout.write(lab.cli(args.cli_command))
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_endpoints(lab: LabAsterisk) -> None:
    s = lab.settings
    print(f"ARI        {lab.ari_url}  user {s.ari_user}  app {s.app_name}")
    print(f"AMI        {lab.ami_host}:{lab.ami_port}  user {s.ami_user}")
    print(f"SIP        service 127.0.0.1:{s.sip_port}  carrier 127.0.0.1:{s.carrier_sip_port}")
    print(f"trunk      PJSIP/<number>@{s.trunk_name}   DIDs {' '.join(s.service_dids)}")
    if "chan_websocket" not in s.build.absent_modules:
        print(f"media      Asterisk dials ws://127.0.0.1:{s.media_ws_port}/media (client mode)")
    else:
        print(f"media      RTP over UDP (externalMedia), ports {s.rtp_start}-{s.rtp_end}")
    print(f"recordings {lab.recordings_dir}")


def _freeswitch_lab(args: argparse.Namespace) -> LabFreeswitch:
    base = FreeswitchLabSettings(instance=args.instance)
    speaking = not getattr(args, "no_utterances", False)
    lab = LabFreeswitch(base, cache_dir=args.cache_dir, utterances=speaking)
    if args.lab_command != "up":
        return lab.located()  # down and status find the lab without its sources
    settings = base.with_free_ports() if args.free_ports else base
    if args.transmit_silence:
        settings = dataclasses.replace(settings, transmit_silence=True)
    overrides = {
        k: getattr(args, k) for k in _FREESWITCH_PORT_OPTIONS if getattr(args, k, None) is not None
    }
    lab.settings = dataclasses.replace(settings, **overrides) if overrides else settings
    return lab


def _run_freeswitch(args: argparse.Namespace) -> int:
    try:
        lab = _freeswitch_lab(args)
        if args.lab_command == "up":
            started = time.monotonic()
            lab.up(timeout=60)
            print(f"lab ready in {time.monotonic() - started:.1f} s")
            _print_freeswitch_endpoints(lab)
        elif args.lab_command == "down":
            lab.down()
        elif args.lab_command == "status":
            status = lab.status()
            print(f"built: {status.built}")
            print(f"running: {status.running} (pid {status.pid})")
            if status.running:
                _print_freeswitch_endpoints(lab)
                print(status.detail)
            return 0 if status.running else 3
        elif args.lab_command == "cli":
            sys.stdout.write(lab.api(args.cli_command))
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_freeswitch_endpoints(lab: LabFreeswitch) -> None:
    s = lab.settings
    print(f"ESL        {lab.esl_host}:{lab.esl_port}  password in {lab.saved_path}")
    print(
        f"SIP        voicedock profile 127.0.0.1:{s.sip_port}  "
        f"carrier 127.0.0.1:{s.carrier_sip_port}"
    )
    print(f"trunk      sofia/gateway/{s.trunk_name}/<number>   DIDs {' '.join(s.service_dids)}")
    print(f"recordings {lab.recordings_dir}")
    print(f"log        {lab.freeswitch_log_path}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voicedock_lab.cli")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
