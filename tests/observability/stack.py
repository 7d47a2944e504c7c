"""The shipped observability files (docker/observability/) as the tests read them: the
dashboards' panel queries with Grafana's variables filled in, the alert rules, Prometheus's
config rendered for a Prometheus of the test's own (Debian's ``prometheus``), and that process.

* ``panel_queries()``: every target of every panel of every dashboard, ``$__rate_interval``,
  ``$instance``, ``$organization`` … replaced (``RATE_INTERVAL``, ``.*``);
* ``metric_names(expr)``: the ``voicedock_*`` names a query reads;
* ``render_config(...)``: the shipped prometheus.yml with the test's target, token file, rule
  files and intervals (everything else as shipped);
* ``shortened_rules(...)``: alerts.yml with every ``for:`` shorter, for a test that cannot wait
  minutes (the shipped durations are checked by ``promtool test rules``);
* ``running_prometheus(...)``: ``prometheus`` on 127.0.0.1, stopped on exit.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from pg_server import free_port
from process_helpers import logged_process

PROJECT = Path(__file__).resolve().parents[2]
OBSERVABILITY = PROJECT / "docker" / "observability"
ALERTS = OBSERVABILITY / "alerts.yml"
PROMETHEUS_CONFIG = OBSERVABILITY / "prometheus.yml"
GRAFANA = OBSERVABILITY / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards"
RULE_TESTS = Path(__file__).parent / "alerts_test.yml"
RATE_INTERVAL = "1m"  # what the tests put for Grafana's $__rate_interval
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
_METRIC = re.compile(r"\bvoicedock_[a-z0-9_]+")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str  # as shipped, with Grafana's variables

    @property
    def promql(self) -> str:
        """The query as Prometheus receives it from Grafana, every variable at its "All"."""

        def value(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            return RATE_INTERVAL if name in ("__rate_interval", "__interval") else ".*"

        return _VARIABLE.sub(value, self.expr)

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def dashboards() -> dict[str, dict[str, Any]]:
    """Each shipped dashboard's JSON, by file name."""
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARDS.glob("*.json"))
    }


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard's panels, those inside rows included, rows themselves left out."""
    found: list[dict[str, Any]] = []
    for panel in board.get("panels", []):
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def panel_queries() -> list[PanelQuery]:
    return [
        PanelQuery(name, panel["title"], target["refId"], target["expr"])
        for name, board in dashboards().items()
        for panel in panels(board)
        for target in panel.get("targets", [])
    ]


def variable_queries() -> list[tuple[str, str]]:
    """(dashboard, query) of each templating variable that queries Prometheus."""
    found = []
    for name, board in dashboards().items():
        for variable in board.get("templating", {}).get("list", []):
            query = variable.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            if variable.get("type") == "query" and isinstance(query, str):
                found.append((name, query))
    return found


def metric_names(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


def alert_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def shortened_rules(destination: Path, for_s: int, source: Path = ALERTS) -> Path:
    """``source`` with every rule's ``for:`` set to ``for_s`` seconds (and nothing else
    changed), written to ``destination``."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    for group in data["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{for_s}s"
    destination.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return destination


def render_config(
    destination: Path,
    *,
    target: str,
    token_file: Path,
    rule_files: list[Path],
    interval_s: int | None = None,
) -> Path:
    """The shipped prometheus.yml with what differs outside the compose stack: the scrape
    target, the token file, the rule files' paths and (``interval_s``) the scrape and
    evaluation intervals."""
    data = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    data["rule_files"] = [str(path) for path in rule_files]
    if interval_s is not None:
        data["global"]["scrape_interval"] = f"{interval_s}s"
        data["global"]["evaluation_interval"] = f"{interval_s}s"
        data["global"]["scrape_timeout"] = f"{interval_s}s"  # never over the interval
    (job,) = data["scrape_configs"]
    job["authorization"]["credentials_file"] = str(token_file)
    job["static_configs"] = [{"targets": [target]}]
    destination.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return destination


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: apt-get install prometheus (scripts/bootstrap.sh)"
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, check=False, timeout=60, cwd=cwd
    )


class Prometheus:
    """A running ``prometheus``: its HTTP API on 127.0.0.1, read with aiohttp (the service
    under test shares the event loop)."""

    def __init__(self, port: int, session: aiohttp.ClientSession) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._session = session

    async def get(self, path: str, **params: str) -> Any:
        async with self._session.get(f"{self.url}{path}", params=params) as resp:
            body = await resp.json()
        assert body["status"] == "success", body
        return body["data"]

    async def ready(self) -> bool:
        try:
            async with self._session.get(f"{self.url}/-/ready") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False


@asynccontextmanager
async def running_prometheus(config: Path, workdir: Path) -> AsyncIterator[Prometheus]:
    """Debian's ``prometheus`` with ``config``, its database in ``workdir``, listening on a free
    port of 127.0.0.1; ready (``/-/ready``) when yielded, stopped on exit."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: apt-get install prometheus (scripts/bootstrap.sh)"
    port = free_port()
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    log = workdir / "prometheus.log"
    timeout = aiohttp.ClientTimeout(total=10)
    with logged_process(args, log, env={}, cwd=workdir) as process:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            prometheus = Prometheus(port, session)
            async with asyncio.timeout(20):
                while not await prometheus.ready():
                    assert process.poll() is None, log.read_text()[-2000:]
                    await asyncio.sleep(0.1)
            yield prometheus
