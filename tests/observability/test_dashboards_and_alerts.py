"""The shipped dashboards and alert rules (docker/observability/), checked without Grafana or a
running Prometheus: promtool accepts the rules and the rendered Prometheus config, the rules'
own unit tests pass (alerts_test.yml), each dashboard is Grafana dashboard JSON whose panels
name the provisioned data source, and every metric a panel, a dashboard variable or an alert
reads is one ``GET /metrics`` exposes, so a renamed metric fails here. The table of
docs/observability.md lists exactly what ``/metrics`` exposes. A Prometheus that scrapes a node
during lab calls: tests/e2e/test_observability_lab.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from api.test_metrics_api import TOKEN
from e2e.conftest import start_app
from fakes.pbx import FakePbx
from fakes.world import make_settings
from observability.stack import (
    ALERTS,
    DASHBOARD_PROVIDERS,
    DATASOURCES,
    OBSERVABILITY,
    PROJECT,
    PROMETHEUS_CONFIG,
    RULE_TESTS,
    alert_rules,
    dashboards,
    metric_names,
    panel_queries,
    panels,
    promtool,
    render_config,
    variable_queries,
)

pytestmark = pytest.mark.unit

OBSERVABILITY_DOC = PROJECT / "docs" / "observability.md"
# What pages a person (issue #65): a provider down, the webhook backlog, late media, the PBX
# link down, the recordings' disk.
PAGED_CAUSES = {
    "VoicedockProviderDown",
    "VoicedockWebhookBacklog",
    "VoicedockMediaLate",
    "VoicedockPbxLinkDown",
    "VoicedockRecordingsDiskLow",
}


def test_promtool_accepts_the_alert_rules() -> None:
    checked = promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout


def test_the_alert_rules_own_unit_tests_pass() -> None:
    """Provider down (with a breaker, and alone) and the webhook backlog on made-up series,
    with the shipped ``for:``."""
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    names = {t["alertname"] for c in yaml.safe_load(RULE_TESTS.read_text())["tests"]
             for t in c["alert_rule_test"]}  # fmt: skip
    assert names == {
        "VoicedockProviderDown",
        "VoicedockCallsLostToProviders",
        "VoicedockWebhookBacklog",
    }


def test_promtool_accepts_the_prometheus_config_rendered_for_a_node(tmp_path: Path) -> None:
    token = tmp_path / "voicedock.token"
    token.write_text(TOKEN)
    config = render_config(
        tmp_path / "prometheus.yml",
        target="127.0.0.1:8080",
        token_file=token,
        rule_files=[ALERTS],
    )
    checked = promtool("check", "config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout


def test_the_shipped_prometheus_config_matches_the_compose_stack() -> None:
    """The paths prometheus.yml names are where compose mounts and writes them."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    compose = yaml.safe_load((PROJECT / "docker" / "compose.yaml").read_text())
    prometheus, grafana = compose["services"]["prometheus"], compose["services"]["grafana"]
    assert prometheus["profiles"] == grafana["profiles"] == ["observability"]
    assert "./observability/alerts.yml:/etc/prometheus/alerts.yml:ro" in prometheus["volumes"]
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "voicedock"  # VoicedockNodeDown reads up{job="voicedock"}
    assert job["static_configs"] == [{"targets": ["voicedock:8080"]}]
    token_file = job["authorization"]["credentials_file"]
    assert f">{token_file};" in prometheus["command"][0].replace(" ", "")
    voicedock = compose["services"]["voicedock"]["environment"]
    assert voicedock["VOICEDOCK_METRICS__BEARER_TOKEN"] == "${METRICS_TOKEN:-}"
    assert prometheus["environment"]["METRICS_TOKEN"] == "${METRICS_TOKEN:-}"
    # Grafana: the provisioning and the dashboards where the provider looks for them.
    (provider,) = yaml.safe_load((DASHBOARD_PROVIDERS / "voicedock.yml").read_text())["providers"]
    mounts = grafana["volumes"]
    assert f"./observability/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./observability/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    (source,) = yaml.safe_load((DATASOURCES / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090"


def test_alerts_say_who_they_page_and_what_happened() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= PAGED_CAUSES
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        if rule["labels"]["severity"] == "page":
            assert "for" in rule, f"{rule['alert']} pages on a single evaluation"


def test_dashboards_are_grafana_json_on_the_provisioned_data_source() -> None:
    (source,) = yaml.safe_load((DATASOURCES / "prometheus.yml").read_text())["datasources"]
    expected = {"type": "prometheus", "uid": source["uid"]}
    boards = dashboards()
    assert set(boards) == {"voicedock.json", "voicedock-organizations.json"}
    assert len({board["uid"] for board in boards.values()}) == len(boards)
    for name, board in boards.items():
        assert isinstance(board["schemaVersion"], int), name
        assert board["title"], name
        assert board["uid"], name
        found = panels(board)
        assert found, name
        assert len({p["id"] for p in board["panels"]}) == len(board["panels"]), name
        for panel in found:
            where = f"{name} / {panel['title']}"
            assert panel["type"] in ("timeseries", "stat"), where
            assert panel["datasource"] == expected, where
            targets = panel["targets"]
            assert targets, where
            assert len({t["refId"] for t in targets}) == len(targets), where
            for target in targets:
                assert target["datasource"] == expected, where
                assert metric_names(target["expr"]), where
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, where
        for variable in board["templating"]["list"]:
            assert variable["datasource"] == expected, name


def test_the_dashboards_show_what_issue_65_asks() -> None:
    """Calls by state, outcomes, latency parts p50/p95, provider errors and switches,
    breakers, webhook backlog, media lateness, per-organization use."""
    read = {name for q in panel_queries() for name in metric_names(q.expr)}
    assert {
        "voicedock_calls",
        "voicedock_calls_ended_total",
        "voicedock_provider_failures_total",
        "voicedock_provider_switches_total",
        "voicedock_provider_breakers_open",
        "voicedock_webhook_outbox_depth",
        "voicedock_media_output_lateness_seconds_total",
        "voicedock_number_calls",
    } <= read
    quantiles = " ".join(q.expr for q in panel_queries() if "histogram_quantile" in q.expr)
    for stage in ("stt", "llm", "tts"):
        for q in ("0.5", "0.95"):
            assert f"histogram_quantile({q}, sum by (le, provider) (rate(voicedock_{stage}_" in (
                quantiles
            ), (stage, q)
    organizations = [q for q in panel_queries() if q.dashboard == "voicedock-organizations.json"]
    assert all('organization=~"$organization"' in q.expr for q in organizations)


async def exposed(tmp_path: Path) -> dict[str, str]:
    """Each metric family ``GET /metrics`` can expose (its ``# TYPE`` line), with its type:
    the real app, every source on (recordings too)."""
    settings = make_settings(f"sqlite:///{tmp_path / 'm.db'}")
    settings.metrics.bearer_token = TOKEN
    settings.recordings.directory = str(tmp_path / "recordings")
    client, _ = await start_app(settings, FakePbx())
    try:
        resp = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 200
        text = await resp.text()
    finally:
        await client.close()
    families = dict(re.findall(r"^# TYPE (voicedock_\w+) (\w+)$", text, re.M))
    return {name: kind for name, kind in families.items() if not name.endswith("_created")}


def sample_names(families: dict[str, str]) -> set[str]:
    names = set()
    for name, kind in families.items():
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            names.add(name)
    return names


async def test_every_metric_a_panel_or_alert_reads_is_exposed(tmp_path: Path) -> None:
    can = sample_names(await exposed(tmp_path))
    readers = [(str(q), q.expr) for q in panel_queries()]
    readers += [(f"{name} variable", query) for name, query in variable_queries()]
    readers += [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]
    assert len(readers) > 30
    for where, expr in readers:
        missing = metric_names(expr) - can
        assert not missing, f"{where} reads {sorted(missing)}, which /metrics does not expose"
    # A test of the test: a renamed metric is caught.
    assert "voicedock_provider_failures" not in can


async def test_the_metrics_table_of_the_docs_lists_what_metrics_exposes(tmp_path: Path) -> None:
    families = set(await exposed(tmp_path))
    table = [
        line.split("|")[1]
        for line in OBSERVABILITY_DOC.read_text().splitlines()
        if line.startswith("| `voicedock_")
    ]
    documented = {name for cell in table for name in re.findall(r"`(voicedock_\w+)`", cell)}
    assert documented == families, (
        f"undocumented: {sorted(families - documented)}; "
        f"not exposed: {sorted(documented - families)}"
    )


def test_no_phone_number_in_the_shipped_files() -> None:
    for path in sorted(OBSERVABILITY.rglob("*")):
        if path.is_file():
            assert not re.search(r"\+?\d{7,}", path.read_text()), path
