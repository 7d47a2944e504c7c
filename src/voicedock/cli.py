"""The ``voicedock`` command: serve, keys create, migrate, doctor (and lab, when installed)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from voicedock import __version__, logs
from voicedock.config import Settings, load_settings
from voicedock.errors import ConfigError, StoreError
from voicedock.store import open_store

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicedock", description=__doc__)
    parser.add_argument("--version", action="version", version=f"voicedock {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="TOML settings file (default: $VOICEDOCK_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the API and the call engine")
    serve.set_defaults(handler=_serve)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser(
        "create", parents=[common], help="create an API key (printed once, on the last line)"
    )
    create.add_argument("--organization", required=True, help="organization name")
    create.add_argument("--name", default="", help="a label for the key")
    create.set_defaults(handler=_keys_create)

    migrate = sub.add_parser("migrate", parents=[common], help="create or upgrade the database")
    migrate.set_defaults(handler=_migrate)

    doctor = sub.add_parser(
        "doctor", parents=[common], help="validate the configuration (and a FreeSWITCH: pbx.kind)"
    )
    doctor.add_argument("--asterisk-config", type=Path, help="also check this Asterisk config dir")
    doctor.set_defaults(handler=_doctor)

    try:
        lab_cli = importlib.import_module("voicedock.lab.cli")
    except ModuleNotFoundError:
        lab_cli = None
    if lab_cli is not None:
        lab_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler()
    logs.configure(handler)  # each line of a call's tasks names its (masked) call id
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"voicedock: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreError as exc:
        print(f"voicedock: database: {exc}", file=sys.stderr)
        return 1
    return code


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from voicedock.api.app import create_app

    settings = _settings(args)
    web.run_app(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        print=lambda _: print(
            f"voicedock listening on http://{settings.server.host}:{settings.server.port}"
        ),
    )
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    from voicedock.api.api_keys import issue_api_key

    settings = _settings(args)

    async def create() -> str:
        store = await open_store(settings.database.url)
        try:
            await store.migrate()
            secret, org = await issue_api_key(store, args.organization, args.name)
        finally:
            await store.aclose()
        print(f"organization: {org.name} ({org.id})")
        print("API key (shown once, store it now):")
        return secret

    print(asyncio.run(create()))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def migrate() -> None:
        store = await open_store(settings.database.url)
        try:
            await store.migrate()
        finally:
            await store.aclose()

    asyncio.run(migrate())
    print("database is up to date")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from voicedock.doctor import run_doctor

    return run_doctor(args.config, args.asterisk_config, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
