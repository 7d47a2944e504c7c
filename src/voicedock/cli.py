"""The ``voicedock`` command: serve, keys (create, list, rename, revoke, allow-listen,
deny-listen), numbers (add, list,
assign, remove), organizations (show, set-limits,
set-branding, domains add/list/verify/remove), billing
(rate-cards set, rate-cards show, set-limit), nodes (list, drain), audit (an
organization's audit trail, as JSON lines), test run (a test
suite run through a node's REST API, for an organization's CI), eval turns (end-of-turn
modes compared on recorded calls), migrate, doctor, and
the commands other installed distributions add (lab, from the voicedock-lab development
distribution)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from voicedock import __version__, logs
from voicedock.collector import garbage_collector
from voicedock.config import Settings, load_settings
from voicedock.config.node import WORKERS_MAX
from voicedock.domain.records import ApiKey, Organization, utcnow
from voicedock.errors import ConfigError, StoreError
from voicedock.store import open_store
from voicedock.store.base import Store, Transaction
from voicedock.store.migrate import NODE_SCHEMA_RECORDED

if TYPE_CHECKING:
    from voicedock.api.audit import Doing

EXIT_CONFIG = 2
# Another distribution adds a command by an entry point in this group: a function that takes
# the subparsers of ``voicedock`` and adds its parser (its handler in ``handler``), e.g.
# ``lab = "voicedock_lab.cli:register"``. The service itself names no such distribution.
COMMANDS_GROUP = "voicedock.commands"

T = TypeVar("T")
_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicedock", description=__doc__)
    parser.add_argument("--version", action="version", version=f"voicedock {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="TOML settings file (default: $VOICEDOCK_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the API and the call engine")
    serve.add_argument(
        "--workers",
        type=_positive,
        help="node processes on this machine, each a node of its own (<[node] id>-w<k>) "
        "sharing the API port (default [node] workers; 0 there: one per core with cloud speech "
        "on PostgreSQL, else one; docs/nodes.md)",
    )
    # A worker of the supervisor that --workers starts: its place (k/N), its orders' pipe.
    serve.add_argument("--worker", help=argparse.SUPPRESS)
    serve.add_argument("--orders-fd", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(handler=_serve)

    keys_sub = _group(sub, "keys", "manage API keys")
    create = keys_sub.add_parser(
        "create", parents=[common], help="create an API key (printed once, on the last line)"
    )
    create.add_argument("--organization", required=True, help="organization name")
    create.add_argument("--name", default="", help="a label for the key")
    create.add_argument(
        "--scope",
        choices=("read_only", "full", "admin"),
        default="full",
        help="read_only: GET only; full: the whole API; admin: also manages keys",
    )
    listen = create.add_mutually_exclusive_group()
    listen.add_argument(
        "--allow-listen",
        dest="listen",
        action="store_const",
        const=True,
        help="the key may hear live calls (GET /calls/{id}/listen); full and admin keys may "
        "unless --deny-listen, read-only keys only with this",
    )
    listen.add_argument(
        "--deny-listen", dest="listen", action="store_const", const=False, help="it may not"
    )
    create.set_defaults(handler=_keys_create)
    listing = keys_sub.add_parser(
        "list", parents=[common], help="list an organization's keys (never their secrets)"
    )
    listing.add_argument("--organization", required=True, help="organization name")
    listing.set_defaults(handler=_keys_list)
    rename = keys_sub.add_parser("rename", parents=[common], help="change a key's label")
    rename.add_argument("key_id", help="the key's id (from 'keys list')")
    rename.add_argument("name", help="the new label")
    rename.set_defaults(handler=_keys_rename)
    revoke = keys_sub.add_parser(
        "revoke", parents=[common], help="revoke a key now (its open streams and sessions end)"
    )
    revoke.add_argument("key_id", help="the key's id (from 'keys list')")
    revoke.set_defaults(handler=_keys_revoke)
    for granted, verb, what in (
        (True, "allow-listen", "let a key hear live calls (GET /calls/{id}/listen)"),
        (False, "deny-listen", "stop a key hearing live calls (its open listen streams end)"),
    ):
        grant = keys_sub.add_parser(verb, parents=[common], help=what)
        grant.add_argument("key_id", help="the key's id (from 'keys list')")
        grant.set_defaults(handler=_keys_listen, listen=granted)

    _add_numbers_parser(sub, common)
    _add_organizations_parser(sub, common)
    _add_billing_parser(sub, common)
    _add_nodes_parser(sub, common)
    _add_dnc_parser(sub, common)
    _add_audit_parser(sub, common)
    _add_test_parser(sub)
    _add_mcp_parser(sub)
    _add_eval_parser(sub, common)

    migrate = sub.add_parser("migrate", parents=[common], help="create or upgrade the database")
    migrate.set_defaults(handler=_migrate)

    doctor = sub.add_parser(
        "doctor", parents=[common], help="validate the configuration and the running PBX"
    )
    doctor.add_argument("--asterisk-config", type=Path, help="also check this Asterisk config dir")
    doctor.add_argument(
        "--offline",
        action="store_true",
        help="check the configuration only, not the running PBX (Asterisk's ARI, FreeSWITCH's ESL)",
    )
    doctor.set_defaults(handler=_doctor)

    for command in entry_points(group=COMMANDS_GROUP):
        command.load()(sub)
    return parser


def _add_eval_parser(sub: _Commands, common: argparse.ArgumentParser) -> None:
    eval_sub = _group(sub, "eval", "judge the node's speech on recorded calls (docs/speech.md)")
    turns = eval_sub.add_parser(
        "turns",
        parents=[common],
        help="replay recorded calls through each end-of-turn mode and compare them",
    )
    turns.add_argument(
        "--call",
        action="append",
        default=[],
        metavar="ID",
        help="a recorded call's id, found under [recordings] directory (repeatable)",
    )
    turns.add_argument(
        "--wav",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="a two-channel recording: the caller left, the assistant right (repeatable)",
    )
    turns.add_argument(
        "--modes",
        default="silence,model",
        help="end-of-turn modes, comma-separated (default silence,model)",
    )
    turns.add_argument("--no-sweep", action="store_true", help="each mode's defaults only")
    turns.add_argument(
        "--barge-in-ms",
        type=_barge_in_ms,
        help="speech over the reply this long (ms) is a real barge-in (default 500)",
    )
    turns.add_argument("--json", action="store_true", help="print JSON, one object per row")
    turns.set_defaults(handler=_eval_turns)


def _barge_in_ms(text: str) -> int:
    if not text.isdigit() or not 100 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError("milliseconds from 100 to 10000")
    return int(text)


def _eval_turns(args: argparse.Namespace) -> int:
    import msgspec

    from voicedock.calls.recordings import find_recording
    from voicedock.errors import MediaError
    from voicedock.pipeline.hearing import turn_model, turn_replay

    if not args.call and not args.wav:
        return _refused("eval turns: name a recorded call (--call ID) or a file (--wav PATH)")
    names = [m.strip() for m in args.modes.split(",") if m.strip()]
    try:
        modes = turn_replay.replay_modes(names, sweep=not args.no_sweep)
    except ValueError as exc:
        return _refused(f"eval turns: {exc}")
    if any(m.uses_model for m in modes) and not turn_model.installed():
        return _refused(
            "eval turns: the turn model (Smart Turn, in the pipecat-ai wheel) is not installed "
            "(scripts/install-offline-speech.sh); use --modes silence"
        )
    paths: list[tuple[Path, str]] = []
    if args.call:
        recordings = _settings(args).recordings
        if not recordings.directory:
            return _refused("eval turns: no [recordings] directory is configured")
        for call_id in args.call:
            found = find_recording(recordings, call_id)
            if found is None:
                return _refused(
                    f"eval turns: no recording of call {call_id!r} under {recordings.directory}"
                )
            paths.append((found, call_id))
    paths += [(path, str(path)) for path in args.wav]
    try:
        calls = [turn_replay.read_call(path, name) for path, name in paths]
    except MediaError as exc:
        return _refused(f"eval turns: {exc}")
    barge_in_ms = args.barge_in_ms or turn_replay.BARGE_IN_MS
    results = asyncio.run(turn_replay.replay_calls(calls, modes, barge_in_ms))
    if args.json:
        for result in results:
            print(msgspec.json.encode(turn_replay.summary(result)).decode())
    else:
        print("\n".join(turn_replay.markdown_table(results)))
    return 0


def _group(sub: _Commands, name: str, what: str) -> _Commands:
    """The subcommands of ``voicedock NAME`` (one is required); ``what``: its help."""
    group = sub.add_parser(name, help=what)
    return group.add_subparsers(dest=f"{name}_command", required=True)


def _refused(message: str) -> int:
    """Say on stderr why the command did nothing; its exit status (1)."""
    print(f"voicedock: {message}", file=sys.stderr)
    return 1


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
    from voicedock.allocator import settle_allocator
    from voicedock.api import serve
    from voicedock.api.app import create_app
    from voicedock.config.workers import WorkerPlace, worker_settings
    from voicedock.workers.count import worker_count
    from voicedock.workers.supervisor import supervise, worker_command

    settings = _settings(args)
    settle_allocator()  # before the service allocates anything (allocator.py)
    worker = None
    if args.worker is not None:  # one of the workers the supervisor below starts
        if args.orders_fd is None:
            raise ConfigError("--orders-fd", "a worker follows its supervisor's orders")
        worker = serve.Worker(WorkerPlace.parse(settings, args.worker), args.orders_fd)
        settings = worker_settings(settings, worker.place)
    else:
        count = worker_count(settings, args.workers)
        if count > 1:
            config = ["--config", args.config] if args.config else []
            serving = ["-m", "voicedock.cli", "serve", *config]
            return supervise(settings, count, worker_command(serving, count))
    kind = settings.server.event_loop
    app = create_app(settings)
    # After the service's context: what it opened is frozen with the rest of start-up.
    server = settings.server
    app.cleanup_ctx.append(garbage_collector(server.gc_thresholds, server.gc_full_every_seconds))
    where = f"http://{settings.server.host}:{settings.server.port}"
    if worker is not None:
        where = f"{where} (node {settings.node.id}, its own port {worker.place.own_port})"
    # SIGTERM drains the node (no new call, its calls finish), a second one or SIGINT stops.
    serve.run(
        app,
        host=settings.server.host,
        port=settings.server.port,
        loop=new_event_loop(kind),
        ready=lambda: print(f"voicedock listening on {where} (event loop: {kind})", flush=True),
        worker=worker,
    )
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= WORKERS_MAX:
        raise argparse.ArgumentTypeError(f"a number from 1 to {WORKERS_MAX}")
    return int(text)


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """The event loop ``server.event_loop`` names: asyncio's own, or uvloop's."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _keys_create(args: argparse.Namespace) -> int:
    from voicedock.api.api_keys import issue_api_key
    from voicedock.domain.records import KeyScope

    secret, org = _with_store(
        args,
        lambda store: issue_api_key(
            store,
            args.organization,
            args.name,
            KeyScope(args.scope),
            listen=args.listen,
            by_operator=True,
        ),
    )
    print(f"organization: {org.name} ({org.id})")
    print("API key (shown once, store it now):")
    print(secret)
    return 0


def _with_store(
    args: argparse.Namespace,
    work: Callable[[Store], Awaitable[T]],
    settings: Settings | None = None,
) -> T:
    """Open (and migrate) the configured database, run ``work`` on it, close it."""
    if settings is None:
        settings = _settings(args)

    async def run() -> T:
        store = await open_store(settings.database.url)
        try:
            await store.migrate()
            return await work(store)
        finally:
            await store.aclose()

    return asyncio.run(run())


def _keys_list(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        org = await store.get_organization_by_name(args.organization)
        if org is None:
            return _refused(f"no organization named {args.organization!r}")
        for key in await store.list_api_keys(org.id):
            revoked = f"revoked {key.revoked_at:%Y-%m-%d %H:%M:%S}" if key.revoked_at else "active"
            listen = "listen" if key.listen else "no-listen"
            print(f"{key.id}  {key.scope.value:9}  {revoked:27}  {listen:9}  {key.name}")
        return 0

    return _with_store(args, work)


def _keys_rename(args: argparse.Namespace) -> int:
    from voicedock.api.api_keys import rename_api_key

    return _on_key(
        args,
        "renamed",
        "api_key.renamed",
        lambda store, key, doing: rename_api_key(store, key, args.name, doing),
    )


def _keys_revoke(args: argparse.Namespace) -> int:
    from voicedock.api.api_keys import revoke_api_key

    return _on_key(args, "revoked", "api_key.revoked", revoke_api_key)


def _keys_listen(args: argparse.Namespace) -> int:
    from voicedock.api.api_keys import set_listen

    done = "listen allowed for" if args.listen else "listen denied for"
    action = "api_key.listen_allowed" if args.listen else "api_key.listen_denied"
    return _on_key(
        args, done, action, lambda store, key, doing: set_listen(store, key, args.listen, doing)
    )


def _on_key(
    args: argparse.Namespace,
    done: str,
    audited: str,
    action: Callable[[Store, ApiKey, Doing], Awaitable[ApiKey]],
) -> int:
    """Run ``action`` on the key ``args.key_id`` names (1 when there is none), recorded in its
    organization's audit trail as ``audited`` by the operator."""
    from voicedock.api.audit import Actor, Doing

    async def work(store: Store) -> int:
        key = await store.get_api_key(None, args.key_id)
        if key is None:
            return _refused(f"no API key {args.key_id!r}")
        await action(store, key, Doing(Actor.operator(key.organization_id), audited, "api_key"))
        print(f"{done} {key.id}")
        return 0

    return _with_store(args, work)


def _add_numbers_parser(sub: _Commands, common: argparse.ArgumentParser) -> None:
    numbers_sub = _group(
        sub, "numbers", "manage phone numbers (the operator's: no API key creates one)"
    )
    add = numbers_sub.add_parser(
        "add", parents=[common], help="register a number on a trunk for an organization"
    )
    add.add_argument("number", help="the number, E.164 (+31850835037)")
    add.add_argument("--organization", required=True, help="organization name")
    add.add_argument("--trunk", required=True, help="one of the configuration's [[trunks]]")
    add.add_argument(
        "--max-concurrent-calls", type=int, default=1, help="calls at once from/to it (1-10000)"
    )
    add.add_argument("--label", default="", help="a label (the organization may change it)")
    add.add_argument(
        "--language",
        help="the language its inbound calls open in, a primary tag such as de (the organization"
        " may change it; default: the caller's number says)",
    )
    add.set_defaults(handler=_numbers_add)
    listing = numbers_sub.add_parser(
        "list", parents=[common], help="list an organization's numbers"
    )
    listing.add_argument("--organization", required=True, help="organization name")
    listing.set_defaults(handler=_numbers_list)
    assign = numbers_sub.add_parser(
        "assign", parents=[common], help="give a number to another organization"
    )
    assign.add_argument("number", help="the number, E.164")
    assign.add_argument("--organization", required=True, help="the organization receiving it")
    assign.set_defaults(handler=_numbers_assign)
    remove = numbers_sub.add_parser("remove", parents=[common], help="delete a number")
    remove.add_argument("number", help="the number, E.164")
    remove.set_defaults(handler=_numbers_remove)


def _answered(
    args: argparse.Namespace,
    answer: Callable[[Store], Awaitable[str]],
    refused: type[Exception],
    settings: Settings | None = None,
) -> int:
    """Run ``answer`` on the configured database and print what it says (an empty answer, such
    as an empty list, prints nothing), or why it was ``refused`` (1)."""

    async def run(store: Store) -> int:
        try:
            text = await answer(store)
        except refused as exc:
            return _refused(str(exc))
        if text:
            print(text)
        return 0

    return _with_store(args, run, settings)


def _on_numbers(args: argparse.Namespace, work: Callable[[Store, Settings], Awaitable[str]]) -> int:
    """Run ``work`` on the configured database; print its answer, or why it was refused (1)."""
    from voicedock.organizations.numbers import NumberRefused

    settings = _settings(args)
    return _answered(args, lambda store: work(store, settings), NumberRefused, settings)


def _numbers_add(args: argparse.Namespace) -> int:
    from voicedock.organizations.numbers import add_number

    async def work(store: Store, settings: Settings) -> str:
        number, org = await add_number(
            store,
            settings,
            args.number,
            args.trunk,
            args.organization,
            args.max_concurrent_calls,
            args.label,
            args.language,
        )
        return f"added {number.number} ({number.id}) on trunk {number.trunk} for {org.name}"

    return _on_numbers(args, work)


def _numbers_list(args: argparse.Namespace) -> int:
    from voicedock.organizations.numbers import list_numbers

    async def work(store: Store, settings: Settings) -> str:
        return "\n".join(
            f"{n.number:16}  {n.trunk:12}  max {n.max_concurrent_calls:<5}  {n.language or '-':3}"
            f"  {n.id}  {n.label}"
            for n in await list_numbers(store, args.organization)
        )

    return _on_numbers(args, work)


def _numbers_assign(args: argparse.Namespace) -> int:
    from voicedock.organizations.numbers import assign_number

    async def work(store: Store, settings: Settings) -> str:
        number, org = await assign_number(store, settings, args.number, args.organization)
        return f"assigned {number.number} ({number.id}) to {org.name}"

    return _on_numbers(args, work)


def _numbers_remove(args: argparse.Namespace) -> int:
    from voicedock.organizations.numbers import remove_number

    async def work(store: Store, settings: Settings) -> str:
        number = await remove_number(store, settings, args.number)
        return f"removed {number.number}"

    return _on_numbers(args, work)


def _add_organizations_parser(sub: _Commands, common: argparse.ArgumentParser) -> None:
    organizations_sub = _group(
        sub, "organizations", "an organization's settings and limits (GET /organization)"
    )
    show = organizations_sub.add_parser(
        "show", parents=[common], help="print an organization as GET /organization answers"
    )
    show.add_argument("organization", help="organization name")
    show.set_defaults(handler=_organizations_show)
    limits = organizations_sub.add_parser(
        "set-limits", parents=[common], help="set an organization's limits (the operator's)"
    )
    limits.add_argument("organization", help="organization name (created if needed)")
    limits.add_argument(
        "--max-concurrent-calls",
        help="its calls at once, every node (0: no limit; 'configuration': the file's"
        " [[limits.organizations]] again)",
    )
    limits.add_argument(
        "--max-scheduled-calls",
        help="its calls waiting with scheduled_at, every node (0: no limit; 'configuration':"
        " the file's [limits] scheduled_calls_per_organization again)",
    )
    limits.set_defaults(handler=_organizations_set_limits)
    _add_domains_parser(organizations_sub, common)


def _on_organization(
    args: argparse.Namespace, change: Callable[[Store], Awaitable[object]] | None = None
) -> int:
    """Run ``change`` (if any), then print the organization as ``GET /organization`` does."""
    import msgspec

    from voicedock.api.models.organization import Organization
    from voicedock.organizations.settings import OrganizationRefused, limits_of

    settings = _settings(args)

    async def answer(store: Store) -> str:
        if change is not None:
            await change(store)
        org = await store.get_organization_by_name(args.organization)
        if org is None:
            raise OrganizationRefused(f"no organization {args.organization!r}")
        operator = settings.ai_disclosure.required_for(org.name)
        limits = await limits_of(store, settings, org)
        shown = Organization.of(org, limits, operator_discloses=operator)
        return msgspec.json.format(msgspec.json.encode(shown)).decode()

    return _answered(args, answer, OrganizationRefused, settings)


def _organizations_show(args: argparse.Namespace) -> int:
    return _on_organization(args)


def _organizations_set_limits(args: argparse.Namespace) -> int:
    from voicedock.organizations.settings import UNCHANGED, Override, set_limits

    def override(option: str, given: str | None) -> Override:
        if given is None:
            return UNCHANGED
        if given != "configuration" and not given.isdigit():
            raise ValueError(f"--{option} is a number or 'configuration'")
        return None if given == "configuration" else int(given)

    try:
        concurrent = override("max-concurrent-calls", args.max_concurrent_calls)
        scheduled = override("max-scheduled-calls", args.max_scheduled_calls)
    except ValueError as exc:
        return _refused(str(exc))
    if concurrent is UNCHANGED and scheduled is UNCHANGED:
        return _refused("give --max-concurrent-calls, --max-scheduled-calls or both")

    async def change(store: Store) -> object:
        return await set_limits(
            store,
            args.organization,
            max_concurrent_calls=concurrent,
            max_scheduled_calls=scheduled,
        )

    return _on_organization(args, change)


def _add_billing_parser(sub: _Commands, common: argparse.ArgumentParser) -> None:
    billing_sub = _group(sub, "billing", "rate cards and monthly spending limits (docs/billing.md)")
    cards = billing_sub.add_parser("rate-cards", help="the rate cards that price calls")
    cards_sub = cards.add_subparsers(dest="rate_cards_command", required=True)
    for verb, what in (
        ("set", "store a new version of a rate card from a TOML or JSON file"),
        ("show", "print the card that prices calls as GET /billing/rate-card answers"),
    ):
        command = cards_sub.add_parser(verb, parents=[common], help=what)
        scope = command.add_mutually_exclusive_group(required=True)
        scope.add_argument("--default", action="store_true", help="the default card")
        scope.add_argument("--organization", help="an organization's own card (its name)")
        if verb == "set":
            command.add_argument("file", type=Path, help="the card (.toml or .json)")
        command.set_defaults(handler=_rate_cards_set if verb == "set" else _rate_cards_show)
    limits = billing_sub.add_parser(
        "set-limit", parents=[common], help="set an organization's monthly spending limit"
    )
    limits.add_argument("organization", help="organization name (created if needed)")
    amount = limits.add_mutually_exclusive_group(required=True)
    amount.add_argument(
        "--monthly-spend",
        help="new calls are refused once the month's costs reach it (a decimal amount in the"
        " currency of its rate card, such as 50.00)",
    )
    amount.add_argument("--no-limit", action="store_true", help="remove the limit")
    limits.add_argument(
        "--spend-warning",
        type=int,
        help="percent of the limit at which a spend-threshold webhook warns (1-99)",
    )
    limits.set_defaults(handler=_billing_set_limit)


def _rate_cards_set(args: argparse.Namespace) -> int:
    import json
    import tomllib

    from voicedock.organizations.billing import BillingRefused, set_rate_card

    try:
        text = args.file.read_text(encoding="utf-8")
        document = json.loads(text) if args.file.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        return _refused(f"{args.file}: {exc}")

    async def answer(store: Store) -> str:
        card = await set_rate_card(store, args.organization, document, utcnow())
        whose = "the default card" if args.default else f"{args.organization}'s card"
        return f"{whose}: version {card.version} ({card.id})"

    return _answered(args, answer, BillingRefused)


def _rate_cards_show(args: argparse.Namespace) -> int:
    import msgspec

    from voicedock.api.models.billing import RateCardReply

    async def work(store: Store) -> int:
        if args.default:
            versions = await store.rate_card_versions(None)
            card = versions[-1] if versions else None
        else:
            org = await store.get_organization_by_name(args.organization)
            if org is None:
                return _refused(f"no organization {args.organization!r}")
            card = await store.current_rate_card(org.id)
        if card is None:
            return _refused("no rate card")
        print(msgspec.json.format(msgspec.json.encode(RateCardReply.of(card))).decode())
        return 0

    return _with_store(args, work)


def _billing_set_limit(args: argparse.Namespace) -> int:
    from voicedock.organizations.billing import BillingRefused, set_spend_limit

    async def answer(store: Store) -> str:
        spend = None if args.no_limit else args.monthly_spend
        limit = await set_spend_limit(store, args.organization, spend, args.spend_warning, utcnow())
        if limit is None:
            return f"{args.organization}: no monthly spending limit"
        warning = limit.warning_percent
        at = f", warned at {warning}%" if warning is not None else ""
        return f"{args.organization}: monthly spending limit {limit.monthly_spend}{at}"

    return _answered(args, answer, BillingRefused)


def _add_domains_parser(organizations_sub: _Commands, common: argparse.ArgumentParser) -> None:
    """``voicedock organizations domains ...`` and ``set-branding`` (docs/domains.md)."""
    domains_sub = _group(
        organizations_sub, "domains", "an organization's host names (GET /domains)"
    )
    add = domains_sub.add_parser(
        "add", parents=[common], help="give an organization a domain, verified (no other has it)"
    )
    add.add_argument("organization", help="organization name (created if needed)")
    add.add_argument("host", help="the host name (an internationalized one is kept as xn--)")
    add.add_argument(
        "--kind",
        choices=("console", "sip"),
        default="console",
        help="console: the branded console and API host; sip: inbound calls routed by domain",
    )
    add.set_defaults(handler=_domains_add)
    listing = domains_sub.add_parser("list", parents=[common], help="list its domains")
    listing.add_argument("organization", help="organization name")
    listing.set_defaults(handler=_domains_list)
    for verb, what, handler in (
        ("verify", "verify a domain the organization proposed", _domains_verify),
        ("remove", "remove a domain", _domains_remove),
    ):
        one = domains_sub.add_parser(verb, parents=[common], help=what)
        one.add_argument("organization", help="organization name")
        one.add_argument("host", help="the domain's host name")
        one.set_defaults(handler=handler)
    brand = organizations_sub.add_parser(
        "set-branding",
        parents=[common],
        help="the name and logo its console domains show (the operator's)",
    )
    brand.add_argument("organization", help="organization name")
    brand.add_argument("--name", required=True, help="the name shown (1-200 characters)")
    brand.add_argument(
        "--logo", type=Path, help="a PNG, JPEG or GIF of at most 256 KiB (none: no logo)"
    )
    brand.set_defaults(handler=_organizations_set_branding)


def _on_domains(
    args: argparse.Namespace,
    work: Callable[[Store, Organization], Awaitable[str]],
    *,
    create: bool = False,
) -> int:
    """Run ``work`` on the organization ``args.organization`` names (``create``: created if
    needed), the proposals past ``[domains] pending_days`` dropped first; print its answer, or
    why it was refused (1)."""
    from voicedock.organizations.config_mirror import ensure_organization
    from voicedock.organizations.domains import (
        DomainRefused,
        drop_expired_proposals,
        organization_named,
    )

    settings = _settings(args)

    async def answer(store: Store) -> str:
        name = args.organization
        org = await (ensure_organization if create else organization_named)(store, name)
        await drop_expired_proposals(store, settings.domains.pending_days)
        return await work(store, org)

    return _answered(args, answer, DomainRefused, settings)


async def _refuse_held_elsewhere(store: Store, org: Organization, host: str) -> None:
    """``DomainRefused`` naming the organization that holds ``host`` verified, when another
    does (the operator is told by whom; an organization never is)."""
    from voicedock.organizations.domains import DomainRefused

    held = await store.find_verified_domain(host)
    if held is None or held.organization_id == org.id:
        return
    holder = await store.get_organization(held.organization_id)
    name = held.organization_id if holder is None else holder.name
    raise DomainRefused(
        f"{host} is already a verified domain of {name!r} ('domains remove {name} {host}' frees it)"
    )


def _as_operator(
    organization_id: str, action: str, resource_type: str
) -> Callable[[Transaction, str], Awaitable[None]]:
    """What records ``action`` on a resource of the organization in its audit trail, in the
    transaction that does it, as the operator's (the local account running the command)."""
    from voicedock.api.audit import Actor

    actor = Actor.operator(organization_id)

    async def record(tx: Transaction, resource_id: str) -> None:
        await tx.insert_audit_event(actor.event(action, resource_type, resource_id))

    return record


def _domains_add(args: argparse.Namespace) -> int:
    from voicedock.domain.domains import DomainKind, DomainStatus
    from voicedock.organizations.domains import (
        DomainRefused,
        checked_host,
        insert_new_domain,
        new_domain,
        verify_domain,
    )

    async def work(store: Store, org: Organization) -> str:
        domain = new_domain(org.id, args.host, DomainKind(args.kind), verified=True)
        await _refuse_held_elsewhere(store, org, domain.host)
        own = await store.get_domain_by_host(org.id, domain.host)
        if own is not None and own.status is DomainStatus.VERIFIED:
            raise DomainRefused(f"{own.host} is already a verified domain of {org.name!r}")
        if own is not None:
            # The organization proposed it: the operator's word verifies that proposal.
            record = _as_operator(org.id, "domain.verified", "domain")
            own = await verify_domain(store, own, record)
            return f"verified {own.host} ({own.kind.value}, {own.id}) for {org.name}"
        # Other organizations' proposals of the host are dropped: the operator's word wins.
        await insert_new_domain(store, domain, _as_operator(org.id, "domain.created", "domain"))
        return f"added {domain.host} ({domain.kind.value}, {domain.id}) for {org.name}"

    try:
        checked_host(args.host)  # before the organization is created
    except DomainRefused as exc:
        return _refused(str(exc))
    return _on_domains(args, work, create=True)


def _domains_list(args: argparse.Namespace) -> int:
    from voicedock.organizations.domains import list_all_domains

    async def work(store: Store, org: Organization) -> str:
        return "\n".join(
            f"{d.host:40}  {d.kind.value:7}  {d.status.value:8}  {d.id}"
            for d in await list_all_domains(store, org.id)
        )

    return _on_domains(args, work)


def _domains_verify(args: argparse.Namespace) -> int:
    from voicedock.organizations.domains import domain_named, verify_domain

    async def work(store: Store, org: Organization) -> str:
        domain = await domain_named(store, org, args.host)
        await _refuse_held_elsewhere(store, org, domain.host)
        record = _as_operator(org.id, "domain.verified", "domain")
        await verify_domain(store, domain, record)
        return f"verified {domain.host}"

    return _on_domains(args, work)


def _domains_remove(args: argparse.Namespace) -> int:
    from voicedock.organizations.domains import domain_named

    async def work(store: Store, org: Organization) -> str:
        domain = await domain_named(store, org, args.host)
        record = _as_operator(org.id, "domain.deleted", "domain")
        async with store.transaction() as tx:
            await tx.delete_domain(org.id, domain.id)
            await record(tx, domain.id)
        return f"removed {domain.host}"

    return _on_domains(args, work)


def _organizations_set_branding(args: argparse.Namespace) -> int:
    from voicedock.organizations.domains import MAX_LOGO_BYTES, branding

    logo = None
    if args.logo is not None:
        try:
            with args.logo.open("rb") as file:
                logo = file.read(MAX_LOGO_BYTES + 1)
        except OSError as exc:
            return _refused(f"cannot read {args.logo}: {exc.strerror}")

    async def work(store: Store, org: Organization) -> str:
        chosen = branding(org.id, args.name, logo)
        record = _as_operator(org.id, "branding.updated", "organization")
        async with store.transaction() as tx:
            await tx.set_branding(chosen)
            await record(tx, org.id)
        shown = "no logo" if chosen.logo is None else f"a {chosen.logo_type} logo"
        return f"{org.name}'s console domains show {chosen.name!r} with {shown}"

    return _on_domains(args, work)


def _add_nodes_parser(sub: _Commands, common: argparse.ArgumentParser) -> None:
    nodes_sub = _group(sub, "nodes", "the nodes running on the database (docs/nodes.md)")
    listing = nodes_sub.add_parser(
        "list", parents=[common], help="each node: its host and pid, lease, calls, draining"
    )
    listing.set_defaults(handler=_nodes_list)
    drain = nodes_sub.add_parser(
        "drain",
        parents=[common],
        help="let a node's calls finish, then stop it (no new call; as SIGTERM does)",
    )
    drain.add_argument(
        "--node",
        help="the node's id (default: this configuration's [node] id, or each of its workers "
        "when it runs as serve --workers)",
    )
    drain.set_defaults(handler=_nodes_drain)


# Rows one `voicedock dnc import` reads (an operator's list; an organization's import is bounded
# tighter, api/routes/do_not_call.py).
MAX_OPERATOR_IMPORT_ROWS = 5_000_000


def _add_dnc_parser(sub: _Commands, common: argparse.ArgumentParser) -> None:
    """``voicedock dnc ...``: the operator's do-not-call list (docs/compliance.md)."""
    dnc_sub = _group(
        sub, "dnc", "the operator's do-not-call list, for every organization (docs/compliance.md)"
    )
    for verb, what, handler in (
        ("add", "add numbers (E.164) or ranges (+1900*)", _dnc_add),
        ("remove", "remove numbers or ranges", _dnc_remove),
    ):
        one = dnc_sub.add_parser(verb, parents=[common], help=what)
        one.add_argument("entries", nargs="+", metavar="ENTRY", help="+31612345678 or +1900*")
        one.set_defaults(handler=handler)
    listing = dnc_sub.add_parser(
        "list", parents=[common], help="the entries (those of [compliance] do_not_call marked)"
    )
    listing.set_defaults(handler=_dnc_list)
    imported = dnc_sub.add_parser(
        "import", parents=[common], help="add the entries of a CSV (first column, one a row)"
    )
    imported.add_argument("file", type=Path, help="a CSV file; a first row 'number' is a header")
    imported.set_defaults(handler=_dnc_import)


def _dnc_entries(texts: Sequence[str]) -> list[str] | None:
    from voicedock.domain.do_not_call import EntryRefused, entry_of

    entries = []
    for text in texts:
        try:
            entries.append(entry_of(text))
        except EntryRefused as refused:
            _refused(f"{text!r}: {refused}")
            return None
    return entries


def _dnc_add(args: argparse.Namespace) -> int:
    entries = _dnc_entries(args.entries)
    if entries is None:
        return 1

    async def work(store: Store) -> int:
        async with store.transaction() as tx:
            added = await tx.add_operator_do_not_call(entries, utcnow())
        print(f"added {added} entr{'y' if added == 1 else 'ies'} ({len(entries) - added} listed)")
        return 0

    return _with_store(args, work)


def _dnc_remove(args: argparse.Namespace) -> int:
    entries = _dnc_entries(args.entries)
    if entries is None:
        return 1

    async def work(store: Store) -> int:
        missing = []
        async with store.transaction() as tx:
            for entry in entries:
                if not await tx.delete_operator_do_not_call(entry):
                    missing.append(entry)
        if missing:
            return _refused(f"not on the operator's list: {', '.join(missing)}")
        print(f"removed {len(entries)}")
        return 0

    return _with_store(args, work)


def _dnc_list(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def work(store: Store) -> int:
        for entry in settings.compliance.do_not_call:
            print(f"{entry}  (config)")
        for entry in await store.list_operator_do_not_call():
            print(entry)
        return 0

    return _with_store(args, work, settings)


def _dnc_import(args: argparse.Namespace) -> int:
    from voicedock.domain.do_not_call import CsvTooLarge, csv_entries

    try:
        read = csv_entries(args.file.read_text("utf-8-sig"), MAX_OPERATOR_IMPORT_ROWS)
    except (OSError, UnicodeDecodeError, CsvTooLarge) as exc:
        return _refused(f"{args.file}: {exc}")
    for row in read.rejected:
        print(f"row {row.row}: {row.message}", file=sys.stderr)

    async def work(store: Store) -> int:
        async with store.transaction() as tx:
            added = await tx.add_operator_do_not_call(read.entries, utcnow())
        print(f"added {added}, {len(read.entries) - added} listed, {len(read.rejected)} refused")
        return 0 if not read.rejected else 1

    return _with_store(args, work)


def _nodes_list(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        async with store.transaction() as tx:
            now = await tx.clock()
        for lease in await store.list_nodes():
            calls = len(await store.list_active_calls(lease.id))
            state = "draining" if lease.draining else "serving"
            if lease.lease_until <= now:
                state = "dead (lease expired)"
            # The newest migration its code knows (docs/upgrades.md): which version it runs.
            schema = lease.schema_version or f"<{NODE_SCHEMA_RECORDED}"
            print(
                f"{lease.id:20}  {lease.host}  pid {lease.pid:<7}  {calls} call(s)  {state}"
                f"  schema {schema}  since {lease.started_at:%Y-%m-%d %H:%M:%S}"
            )
        return 0

    return _with_store(args, work)


def _nodes_drain(args: argparse.Namespace) -> int:
    from voicedock.config.workers import is_worker_of

    settings = _settings(args)

    async def work(store: Store) -> int:
        asked = args.node or settings.node.id
        ids = [asked]
        if not args.node:  # this configuration's node, or its workers (serve --workers)
            ids += [n.id for n in await store.list_nodes() if is_worker_of(asked, n.id)]
        drained = [node_id for node_id in ids if await _drain(store, settings, node_id)]
        if not drained:
            return _refused(f"no node {asked!r} is running on this database")
        return 0

    return _with_store(args, work, settings)


async def _drain(store: Store, settings: Settings, node_id: str) -> bool:
    """Node ``node_id`` told to drain (said on stdout); False when it does not run."""
    async with store.transaction() as tx:
        now = await tx.clock()
        lease = await tx.drain_node(node_id)
    if lease is None or lease.lease_until <= now:
        return False
    calls = len(await store.list_active_calls(node_id))
    renewal = settings.node.lease_seconds / 3
    print(
        f"node {node_id} drains within {renewal:.0f} s: it takes no new call, and stops once "
        f"its {calls} call(s) have ended (at most [node] drain_timeout_seconds)"
    )
    return True


def _add_audit_parser(sub: _Commands, common: argparse.ArgumentParser) -> None:
    audit = sub.add_parser(
        "audit",
        parents=[common],
        help="an organization's audit trail, newest first, one JSON object a line "
        "(docs/privacy.md)",
    )
    audit.add_argument("--organization", required=True, help="organization name")
    audit.add_argument(
        "--since",
        type=_since,
        help="only events after this: an ISO 8601 date-time (UTC unless it says), or a span "
        "back from now: 30m, 24h, 7d",
    )
    audit.add_argument("--action", help="only this action, e.g. assistant.updated")
    audit.set_defaults(handler=_audit)


AUDIT_PAGE = 500  # events read at a time
_SPAN = re.compile(r"([0-9]{1,6})([mhd])")
_SPAN_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def _since(text: str) -> datetime:
    span = _SPAN.fullmatch(text)
    if span is not None:
        return utcnow() - timedelta(**{_SPAN_UNITS[span.group(2)]: int(span.group(1))})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "an ISO 8601 date-time (2026-01-31T12:00:00Z) or a span: 30m, 24h, 7d"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _audit(args: argparse.Namespace) -> int:
    import msgspec

    from voicedock.api.models.audit_events import AuditEvent
    from voicedock.store.base import AuditQuery, CallCursor, TimeRange

    async def work(store: Store) -> int:
        org = await store.get_organization_by_name(args.organization)
        if org is None:
            return _refused(f"no organization named {args.organization!r}")
        query = AuditQuery(
            organization_id=org.id,
            limit=AUDIT_PAGE,
            action=args.action,
            created=TimeRange(start=args.since),
        )
        while True:
            page = await store.list_audit_events(query)
            for event in page.events:
                sys.stdout.write(msgspec.json.encode(AuditEvent.of(event)).decode() + "\n")
            if len(page.events) < AUDIT_PAGE:
                return 0
            last = page.events[-1]
            query = dataclasses.replace(query, after=CallCursor(last.created_at, last.seq))

    return _with_store(args, work)


def _add_mcp_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mcp = sub.add_parser(
        "mcp",
        help="serve the Model Context Protocol: an AI assistant places and reads calls "
        "through a node's API (docs/mcp.md)",
    )
    mcp.add_argument("--url", default="http://127.0.0.1:8080", help="the node's API")
    mcp.add_argument(
        "--key-env",
        default="VOICEDOCK_API_KEY",
        help="stdio: where the API key is (over HTTP each client sends its own)",
    )
    mcp.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio",
    )
    mcp.set_defaults(handler=_mcp)


def _mcp(args: argparse.Namespace) -> int:
    import os

    import aiohttp
    from aiohttp import web

    from voicedock.mcp_server.tools import NodeApi
    from voicedock.mcp_server.transports import http_app, serve_stdio

    async def serve() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            api = NodeApi(session, args.url)
            if args.http is None:
                await serve_stdio(api, key)
                return
            runner = web.AppRunner(http_app(api))
            await runner.setup()
            try:
                await web.TCPSite(runner, host, int(port)).start()
                print(f"voicedock mcp: http://{args.http}/mcp", file=sys.stderr, flush=True)
                await asyncio.Event().wait()
            finally:
                await runner.cleanup()

    key = os.environ.get(args.key_env, "")
    host, _, port = (args.http or "").rpartition(":")
    if args.http is None and not key:
        print(f"voicedock: the API key is read from ${args.key_env}", file=sys.stderr)
        return EXIT_CONFIG
    if args.http is not None and not (host and port.isdigit()):
        print("voicedock: --http takes HOST:PORT (127.0.0.1:8765)", file=sys.stderr)
        return EXIT_CONFIG
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


def _add_test_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    test = sub.add_parser("test", help="test suites (docs/testing-assistants.md)")
    test_sub = test.add_subparsers(dest="test_command", required=True)
    run = test_sub.add_parser(
        "run",
        help="run a test suite against an assistant through a node's API; exit 1 when a "
        "scenario does not pass",
    )
    run.add_argument("file", type=Path, help="the suite as JSON: {name, scenarios}")
    run.add_argument("--assistant", required=True, help="the assistant's name")
    run.add_argument("--url", default="http://127.0.0.1:8080", help="the node's API")
    run.add_argument("--key-env", default="VOICEDOCK_API_KEY", help="where the API key is")
    run.add_argument("--junit", type=Path, help="write a JUnit XML report here")
    run.add_argument("--timeout", type=float, default=900.0, help="seconds the run may take")
    run.set_defaults(handler=_test_run)


def _test_run(args: argparse.Namespace) -> int:
    import os

    from voicedock.suite_runs import SuiteRunFailed, junit_report, load_suite, run_suite

    key = os.environ.get(args.key_env, "")
    if not key:
        print(f"voicedock: the API key is read from ${args.key_env}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        suite = load_suite(args.file)
        run = asyncio.run(run_suite(args.url, key, suite, args.assistant, args.timeout))
    except (SuiteRunFailed, OSError) as exc:
        print(f"voicedock: {exc}", file=sys.stderr)
        return 1
    if args.junit is not None:
        args.junit.write_bytes(junit_report(str(suite["name"]), run))
    for result in run.results:
        line = f"{result.outcome:7} {result.name}"
        print(line if result.reason is None else f"{line}: {result.reason}")
    print(f"run {run.id}: {run.status}")
    return 0 if run.status == "passed" else 1


def _migrate(args: argparse.Namespace) -> int:
    async def migrated(_store: Store) -> None:
        """Nothing more: ``_with_store`` migrates the store it opens."""

    _with_store(args, migrated)
    print("database is up to date")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from voicedock.doctor import run_doctor

    return run_doctor(args.config, args.asterisk_config, sys.stdout, live=not args.offline)


if __name__ == "__main__":
    raise SystemExit(main())
