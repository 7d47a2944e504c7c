from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from process_helpers import free_port
from voicedock import cli
from voicedock.cli import main
from voicedock.store import open_store
from voicedock.store.migrate import schema_version

pytestmark = pytest.mark.unit


def write_config(tmp_path: Path, extra: str = "", port: int = 8080) -> Path:
    path = tmp_path / "voicedock.toml"
    path.write_text(
        f'[server]\nport = {port}\n[database]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n'
        f'[pbx]\nkind = "none"\n{extra}',
        encoding="utf-8",
    )
    return path


def test_keys_create_prints_key_once_on_last_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert main(["keys", "create", "--config", str(config), "--organization", "acme"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    key = out[-1]
    assert key.startswith("vd_")
    assert len(key) > 30
    assert sum(key in line for line in out) == 1

    async def stored() -> bool:
        store = await open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
        try:
            found = await store.find_api_key(hashlib.sha256(key.encode()).hexdigest())
            org = await store.get_organization_by_name("acme")
        finally:
            await store.aclose()
        return found is not None and org is not None and found.organization_id == org.id

    assert asyncio.run(stored())


def test_migrate_and_doctor_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["migrate", "--config", str(config)]) == 0
    assert main(["doctor", "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip().endswith("OK")


def test_doctor_reports_the_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, '[[trunks]]\nname = "bad name!"\n')
    assert main(["doctor", "--config", str(config)]) == 2
    assert "trunks[0].name" in capsys.readouterr().out


def test_doctor_asterisk_dir_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    code = main(["doctor", "--config", str(config), "--asterisk-config", str(tmp_path / "nope")])
    assert code == 1
    assert "not a directory" in capsys.readouterr().out


def test_serve_with_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server]\nport = 70000\n", encoding="utf-8")
    assert main(["serve", "--config", str(path)]) == 2
    assert "server.port" in capsys.readouterr().err


def test_serve_refuses_an_assistant_whose_calls_could_not_be_placed(tmp_path: Path) -> None:
    """An [[assistants]] entry whose LLM URL the egress policy refuses stops start-up with a
    message naming it (as any setting the node cannot run), instead of failing its calls."""
    config = write_config(
        tmp_path,
        '[[assistants]]\nname = "Sales"\norganization = "acme"\n'
        'llm_config = { provider = "openai", base_url = "http://10.0.0.5:8000/v1" }\n',
        port=free_port(),
    )
    done = subprocess.run(  # a node that started anyway would serve until killed here
        [sys.executable, "-m", "voicedock.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        "voicedock: config: assistants[0].llm_config.base_url: host 10.0.0.5 is not an allowed "
        "provider host (assistant 'Sales' of organization 'acme')"
    ) in done.stderr


INBOUND_ID = "call-_+31612345678_Ab3dEf9hJk2m"


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_serve_answers_health_and_stops(tmp_path: Path, event_loop: str) -> None:
    port = free_port()
    config = write_config(tmp_path, port=port)
    config.write_text(
        config.read_text().replace("[server]\n", f'[server]\nevent_loop = "{event_loop}"\n')
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicedock.cli", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        # An inbound call's id carries the caller's number: the access log masks it.
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/calls/{INBOUND_ID}", timeout=5)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        output = proc.stdout.read().decode()
        proc.stdout.close()
    assert f"(event loop: {event_loop})" in output
    assert "/calls/call-_+316***78_Ab3dEf9hJk2m" in output
    assert "31612345678" not in output


def _serving(config: Path, port: int) -> subprocess.Popen[bytes]:
    """``voicedock serve`` with ``config``, once ``/health`` answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicedock.cli", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.1)


def test_nodes_drain_stops_a_running_node_and_nodes_list_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    config = write_config(tmp_path, '[node]\nid = "solo"\nlease_seconds = 3\n', port=port)
    proc = _serving(config, port)
    try:
        assert main(["nodes", "list", "--config", str(config)]) == 0
        listed = capsys.readouterr().out
        assert listed.startswith("solo ")
        assert f"0 call(s)  serving  schema {schema_version()}  since" in listed
        assert main(["nodes", "drain", "--node", "nobody", "--config", str(config)]) == 1
        assert "no node 'nobody' is running" in capsys.readouterr().err
        assert main(["nodes", "drain", "--config", str(config)]) == 0
        assert "node solo drains within 1 s" in capsys.readouterr().out
        assert proc.wait(timeout=10) == 0  # no call to wait for: it stops at its renewal
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        assert proc.stdout is not None
        output = proc.stdout.read().decode()
        proc.stdout.close()
    assert "node solo drains (voicedock nodes drain)" in output
    assert "node solo drained: no call left" in output


def test_sigterm_drains_and_a_second_one_or_sigint_stops_at_once() -> None:
    from voicedock.api.serve import StopSignals

    term = StopSignals()
    term.terminate()
    assert term.drain.is_set()
    assert not term.stop.is_set()
    term.terminate()
    assert term.stop.is_set()
    interrupted = StopSignals()
    interrupted.interrupt()
    assert interrupted.stop.is_set()
    assert not interrupted.drain.is_set()


def test_make_pbx_by_kind() -> None:
    from voicedock.config import Settings
    from voicedock.service import NoPbx, make_pbx

    settings = Settings()
    settings.pbx.kind = "none"
    assert isinstance(make_pbx(settings), NoPbx)
    settings.pbx.kind = "asterisk"
    assert type(make_pbx(settings)).__name__ == "AsteriskPbx"


def test_doctor_freeswitch_unreachable_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    extra = f'[pbx.freeswitch]\nesl_port = {port}\nesl_password = "s3cretPassword"\n'
    config = (
        write_config(tmp_path, extra).read_text().replace('kind = "none"', 'kind = "freeswitch"')
    )
    path = tmp_path / "fs.toml"
    path.write_text(config, encoding="utf-8")
    assert main(["doctor", "--config", str(path)]) == 1
    assert f"cannot reach the Event Socket at 127.0.0.1:{port}" in capsys.readouterr().out


def test_doctor_asterisk_unreachable_exits_1_and_offline_checks_the_configuration_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    extra = f'[pbx.asterisk]\nari_url = "http://127.0.0.1:{port}/ari"\n'
    config = write_config(tmp_path, extra).read_text().replace('kind = "none"', 'kind = "asterisk"')
    path = tmp_path / "asterisk.toml"
    path.write_text(config, encoding="utf-8")
    assert main(["doctor", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"error: asterisk: cannot reach ARI at http://127.0.0.1:{port}/ari" in out
    main(["doctor", "--config", str(path), "--offline"])
    assert "ARI" not in capsys.readouterr().out


def test_keys_list_rename_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    args = ["--config", str(config)]
    assert main(["keys", "create", *args, "--organization", "acme", "--scope", "read_only"]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["keys", "list", *args, "--organization", "acme"]) == 0
    listed = capsys.readouterr().out.strip().splitlines()
    assert len(listed) == 1
    key_id, scope, state = listed[0].split()[:3]
    assert (scope, state) == ("read_only", "active")
    assert secret not in listed[0]
    assert main(["keys", "rename", *args, key_id, "wallboard"]) == 0
    assert main(["keys", "revoke", *args, key_id]) == 0
    capsys.readouterr()
    assert main(["keys", "list", *args, "--organization", "acme"]) == 0
    line = capsys.readouterr().out.strip()
    assert "revoked" in line
    assert line.endswith("wallboard")
    assert main(["keys", "revoke", *args, "no-such-key"]) == 1


def test_operator_key_commands_are_in_the_organizations_audit_trail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the operator does to an organization's keys at the command line is in that
    organization's trail, by the local account that did it; a command that changes nothing
    (revoking a revoked key) and another organization's key leave no event."""
    import getpass

    config = write_config(tmp_path)
    args = ["--config", str(config)]
    for organization in ("acme", "globex"):
        assert main(["keys", "create", *args, "--organization", organization]) == 0
    capsys.readouterr()
    assert main(["keys", "list", *args, "--organization", "acme"]) == 0
    key_id = capsys.readouterr().out.split()[0]
    for command in (["rename", key_id, "wallboard"], ["deny-listen", key_id]):
        assert main(["keys", command[0], *args, *command[1:]]) == 0
    assert main(["keys", "revoke", *args, key_id]) == 0
    assert main(["keys", "revoke", *args, key_id]) == 0  # already revoked: no change
    capsys.readouterr()
    assert main(["audit", *args, "--organization", "acme"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["action"] for e in events] == [
        "api_key.revoked",
        "api_key.listen_denied",
        "api_key.renamed",
        "api_key.created",
    ]
    assert {(e["actor"], e["actor_kind"], e["resource_id"]) for e in events} == {
        (getpass.getuser(), "operator", key_id)
    }


def test_keys_listen_grant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Read-only keys (dashboards) do not hear live calls unless the operator grants it; full
    and admin keys do unless the operator withdraws it. ``keys list`` shows which."""
    config = write_config(tmp_path)
    args = ["--config", str(config), "--organization", "acme"]

    def create(*options: str) -> None:
        assert main(["keys", "create", *args, *options]) == 0

    def listing() -> dict[str, str]:
        capsys.readouterr()
        assert main(["keys", "list", *args]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        return {line.split()[-1]: line.split()[3] for line in lines}  # name -> listen

    create("--scope", "read_only", "--name", "wallboard")
    create("--scope", "read_only", "--name", "supervisors", "--allow-listen")
    create("--name", "agent")
    create("--scope", "admin", "--name", "crm", "--deny-listen")
    assert listing() == {
        "wallboard": "no-listen",
        "supervisors": "listen",
        "agent": "listen",
        "crm": "no-listen",
    }
    with pytest.raises(SystemExit):  # one or the other
        main(["keys", "create", *args, "--allow-listen", "--deny-listen"])
    capsys.readouterr()
    assert main(["keys", "list", *args]) == 0
    ids = {line.split()[-1]: line.split()[0] for line in capsys.readouterr().out.splitlines()}
    common = ["--config", str(config)]
    assert main(["keys", "allow-listen", *common, ids["wallboard"]]) == 0
    assert f"listen allowed for {ids['wallboard']}" in capsys.readouterr().out
    assert main(["keys", "deny-listen", *common, ids["agent"]]) == 0
    assert listing() == {
        "wallboard": "listen",
        "supervisors": "listen",
        "agent": "no-listen",
        "crm": "no-listen",
    }
    assert main(["keys", "allow-listen", *common, "no-such-key"]) == 1


def test_numbers_add_list_assign_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(
        tmp_path,
        '[[trunks]]\nname = "carrier"\n[[trunks]]\nname = "private"\norganizations = ["acme"]\n'
        '[[numbers]]\nnumber = "+31850835037"\ntrunk = "carrier"\norganization = "acme"\n',
    )
    args = ["--config", str(config)]
    add = ["numbers", "add", *args, "--trunk", "private", "--max-concurrent-calls", "3"]
    assert main([*add, "+31850835099", "--organization", "acme", "--label", "Sales"]) == 0
    assert "added +31850835099" in capsys.readouterr().out
    assert main(["numbers", "list", *args, "--organization", "acme"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert line.split()[:4] == ["+31850835099", "private", "max", "3"]
    assert line.endswith("Sales")
    # Refused, each saying why: taken, a trunk not serving the organization, configured.
    assert main([*add, "+31850835099", "--organization", "acme"]) == 1
    assert "already registered to organization 'acme'" in capsys.readouterr().err
    assert main([*add, "+31850835098", "--organization", "globex"]) == 1
    assert "does not serve organization 'globex'" in capsys.readouterr().err
    assert main(["numbers", "assign", *args, "+31850835099", "--organization", "globex"]) == 1
    assert "does not serve organization 'globex'" in capsys.readouterr().err
    assert main(["numbers", "remove", *args, "+31850835037"]) == 1
    assert "[[numbers]]" in capsys.readouterr().err
    assert main([*add, "12345", "--organization", "acme"]) == 1
    assert "E.164" in capsys.readouterr().err

    assert main(["numbers", "add", *args, "+31850835098", "--organization", "acme",
                 "--trunk", "carrier"]) == 0  # fmt: skip
    assert main(["numbers", "assign", *args, "+31850835098", "--organization", "globex"]) == 0
    capsys.readouterr()
    assert main(["numbers", "list", *args, "--organization", "globex"]) == 0
    assert capsys.readouterr().out.split()[:2] == ["+31850835098", "carrier"]
    assert main(["numbers", "remove", *args, "+31850835098"]) == 0
    assert main(["numbers", "remove", *args, "+31850835098"]) == 1
    assert "no phone number" in capsys.readouterr().err


def test_a_number_added_with_a_language_opens_its_calls_in_it_as_the_organization_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``numbers add --language``: the number's language as the organization's key reads it
    through the API (what its inbound calls open in, docs/speech.md), and in ``numbers list``."""
    port = free_port()
    config = write_config(tmp_path, '[[trunks]]\nname = "carrier"\n', port=port)
    args = ["--config", str(config), "--organization", "acme", "--trunk", "carrier"]
    for refused in ("German", "DE", "de-AT"):
        assert main(["numbers", "add", "+31850835011", *args, "--language", refused]) == 1
        assert f"{refused!r} is not a language" in capsys.readouterr().err
    assert main(["numbers", "add", "+31850835011", *args, "--language", "de"]) == 0
    assert main(["numbers", "add", "+31850835012", *args]) == 0
    capsys.readouterr()
    assert main(["numbers", "list", "--config", str(config), "--organization", "acme"]) == 0
    listed = {line.split()[0]: line.split()[4] for line in capsys.readouterr().out.splitlines()}
    assert listed == {"+31850835011": "de", "+31850835012": "-"}
    assert main(["keys", "create", "--config", str(config), "--organization", "acme"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    proc = _serving(config, port)
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/phone-numbers", headers={"Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.load(answer)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    languages = {n["number"]: n["language"] for n in body["phone_numbers"]}
    assert languages == {"+31850835011": "de", "+31850835012": None}


def test_doctor_warns_when_organizations_may_reach_internal_networks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, '[egress]\nallowed_networks = ["127.0.0.1:11434"]\n')
    assert main(["doctor", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "warning: egress.allowed_networks[0]: every organization may" in out
    assert out.strip().endswith("OK")
    config = write_config(tmp_path, "[egress]\nallow_loopback = true\n")
    assert main(["doctor", "--config", str(config)]) == 0
    assert "warning: egress.allow_loopback" in capsys.readouterr().out


def test_the_example_configuration_has_no_egress_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = Path(__file__).resolve().parents[1] / "voicedock.example.toml"
    main(["doctor", "--config", str(example), "--offline"])
    assert "egress" not in capsys.readouterr().out


def test_organizations_show_and_set_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        '[[trunks]]\nname = "carrier"\n'
        '[[limits.organizations]]\norganization = "acme"\nmax_concurrent_calls = 4\n',
    )
    args = ["--config", str(config)]
    assert main(["organizations", "show", *args, "acme"]) == 1
    assert "no organization 'acme'" in capsys.readouterr().err
    set_limits = ["organizations", "set-limits", *args, "acme", "--max-concurrent-calls"]
    assert main([*set_limits, "2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == "acme"
    assert shown["limits"]["max_concurrent_calls"] == 2
    assert shown["limits"]["max_concurrent_calls_source"] == "operator"
    assert main(["organizations", "show", *args, "acme"]) == 0
    assert json.loads(capsys.readouterr().out)["limits"]["max_concurrent_calls"] == 2
    # Back to the file's, and refusals saying why.
    assert main([*set_limits, "configuration"]) == 0
    limits = json.loads(capsys.readouterr().out)["limits"]
    assert (limits["max_concurrent_calls"], limits["max_concurrent_calls_source"]) == (
        4,
        "configuration",
    )
    assert main([*set_limits, "-1"]) == 1
    assert "a number or 'configuration'" in capsys.readouterr().err
    assert main([*set_limits, "100001"]) == 1
    assert "0-100000" in capsys.readouterr().err


def test_set_limits_bounds_the_calls_an_organization_has_waiting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        '[[trunks]]\nname = "carrier"\n'
        "[limits]\nscheduled_calls_per_organization = 50\n"
        '[[limits.organizations]]\norganization = "acme"\nmax_concurrent_calls = 4\n',
    )
    set_limits = ["organizations", "set-limits", "--config", str(config), "acme"]
    assert main([*set_limits, "--max-scheduled-calls", "7"]) == 0
    limits = json.loads(capsys.readouterr().out)["limits"]
    assert (limits["max_scheduled_calls"], limits["max_scheduled_calls_source"]) == (7, "operator")
    assert (limits["max_concurrent_calls"], limits["max_concurrent_calls_source"]) == (
        4,
        "configuration",  # left as it was
    )
    assert main([*set_limits, "--max-concurrent-calls", "2"]) == 0
    limits = json.loads(capsys.readouterr().out)["limits"]
    assert (limits["max_scheduled_calls"], limits["max_concurrent_calls"]) == (7, 2)
    assert main([*set_limits, "--max-scheduled-calls", "configuration"]) == 0
    limits = json.loads(capsys.readouterr().out)["limits"]
    assert (limits["max_scheduled_calls"], limits["max_scheduled_calls_source"]) == (
        50,
        "configuration",
    )
    assert main(set_limits) == 1
    assert "give --max-concurrent-calls, --max-scheduled-calls or both" in capsys.readouterr().err
    assert main([*set_limits, "--max-scheduled-calls", "many"]) == 1
    assert "--max-scheduled-calls is a number or 'configuration'" in capsys.readouterr().err
    assert main([*set_limits, "--max-scheduled-calls", "100001"]) == 1
    assert "max scheduled calls must be 0-100000" in capsys.readouterr().err


class CommandEntryPoint:
    """An installed distribution's entry in ``voicedock.commands`` (what importlib lists)."""

    def __init__(self, register: Callable[[Any], None]) -> None:
        self._register = register

    def load(self) -> Callable[[Any], None]:
        return self._register


def test_a_command_another_distribution_adds_is_offered_and_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def hello(args: Any) -> int:
        print(f"hello {args.name}")
        return 7

    def register(subparsers: Any) -> None:
        parser = subparsers.add_parser("hello", help="say hello")
        parser.add_argument("name")
        parser.set_defaults(handler=hello)

    asked: list[str] = []

    def installed(*, group: str) -> list[CommandEntryPoint]:
        asked.append(group)
        return [CommandEntryPoint(register)]

    monkeypatch.setattr(cli, "entry_points", installed)
    assert main(["hello", "lab"]) == 7
    assert capsys.readouterr().out == "hello lab\n"
    assert asked == [cli.COMMANDS_GROUP]


def test_without_the_lab_installed_there_is_no_lab_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The service's own wheel (pip install ., the Docker image): every command but ``lab``."""
    monkeypatch.setattr(cli, "entry_points", lambda *, group: [])
    with pytest.raises(SystemExit) as exited:
        main(["lab", "status"])
    assert exited.value.code == 2
    assert "invalid choice: 'lab'" in capsys.readouterr().err


def test_audit_prints_an_organization_s_events_as_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``voicedock audit`` reads the trail from the database: the organization's events,
    newest first, one JSON object a line, by ``--since`` and ``--action``."""
    from datetime import timedelta

    from voicedock.domain.audit import ActorKind, AuditEvent
    from voicedock.domain.records import utcnow

    config = write_config(tmp_path)
    args = ["--config", str(config)]
    for organization in ("acme", "globex"):
        assert main(["keys", "create", *args, "--organization", organization]) == 0
    capsys.readouterr()

    async def seed() -> None:
        store = await open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
        try:
            acme = await store.get_organization_by_name("acme")
            globex = await store.get_organization_by_name("globex")
            assert acme is not None
            assert globex is not None
            now = utcnow()
            async with store.transaction() as tx:
                for org, action, hours_ago, resource in (
                    (acme, "assistant.created", 48, "old"),
                    (acme, "assistant.created", 2, "a1"),
                    (acme, "call.listen", 1, "c1"),
                    (acme, "assistant.created", 0, "a2"),
                    (globex, "assistant.created", 0, "g1"),
                ):
                    await tx.insert_audit_event(
                        AuditEvent(
                            organization_id=org.id,
                            actor="key-1",
                            actor_kind=ActorKind.API_KEY,
                            action=action,
                            resource_type=action.split(".")[0],
                            resource_id=resource,
                            created_at=now - timedelta(hours=hours_ago),
                        )
                    )
        finally:
            await store.aclose()

    asyncio.run(seed())
    audit = ["audit", *args, "--organization", "acme"]
    assert main([*audit, "--since", "24h", "--action", "assistant.created"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["resource_id"] for e in lines] == ["a2", "a1"]
    assert lines[0]["action"] == "assistant.created"
    assert lines[0]["actor"] == "key-1"
    assert main(audit) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5  # and the operator's key.created
    assert main(["audit", *args, "--organization", "nobody"]) == 1
    with pytest.raises(SystemExit):
        main([*audit, "--since", "last week"])
