"""The alerting rules (helm/airline-streaming/alerts/): valid PromQL, each alert proven to fire
on the series that should trigger it and to stay silent on a healthy system by Prometheus' own
rule engine (``promtool test rules``), only metrics the components really export, and the
chart's PrometheusRule carrying exactly that file's groups."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from k8s_support import CHART, of_kind

pytestmark = pytest.mark.k8s

ALERTS = CHART / "alerts"
RULES = ALERTS / "airline-streaming.rules.yaml"
RULE_TESTS = ALERTS / "airline-streaming.rules.test.yaml"
SEVERITIES = {"critical", "warning", "info"}
#: Metric names of this project: every component's metrics start with one of these.
OWN_METRIC = re.compile(r"\b((?:engine|lake|producer|airline_etl)_[a-z0-9_]+)\b")


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package prometheus; tools/system-deps.sh "
                    "installs it)")
    return found


def test_rules_are_valid_promql() -> None:
    result = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_each_alert_fires_when_it_should_and_not_on_a_healthy_system() -> None:
    result = subprocess.run([_promtool(), "test", "rules", RULE_TESTS.name], cwd=ALERTS,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_silent() -> None:
    """Each alert has a case where it fires (exp_alerts) and one where it must not."""
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
             for case in test.get("alert_rule_test", [])]
    firing = {c["alertname"] for c in cases if c.get("exp_alerts")}
    silent = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    names = {a["alert"] for a in _alerts()}
    assert names - firing == set(), "alerts never shown to fire"
    assert names - silent == set(), "alerts never shown to stay silent"


def test_alerts_have_a_severity_and_say_what_to_do() -> None:
    for alert in _alerts():
        assert alert["labels"]["severity"] in SEVERITIES, alert["alert"]
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
        assert alert["alert"].startswith("Airline"), alert["alert"]


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^a-z0-9 _-]", "", m.group(1).strip().lower()).replace(" ", "-")
            for m in re.finditer(r"^#+ (.+)$", markdown, flags=re.MULTILINE)}


def test_each_alert_links_its_own_section_of_the_runbook() -> None:
    runbook = CHART.parent.parent / "docs" / "runbook.md"
    anchors = _anchors(runbook.read_text())
    for alert in _alerts():
        url = alert["annotations"].get("runbook_url", "")
        assert url == f"docs/runbook.md#{alert['alert'].lower()}", alert["alert"]
        assert alert["alert"].lower() in anchors, f"docs/runbook.md has no section {alert['alert']}"


def _exported_metric_names() -> set[str]:
    """Every series name the components expose, as Prometheus sees it (``_total`` on
    counters, ``_bucket``/``_sum``/``_count`` on histograms)."""
    from prometheus_client import REGISTRY

    for module in ("airline_producer.metrics", "airline_engine.metrics",
                   "airline_lake_writer.metrics"):
        importlib.import_module(module)
    etl = importlib.import_module("airline_etl.metrics")
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "summary": ("_sum", "_count")}
    names: set[str] = set()
    for registry in (REGISTRY, etl.REGISTRY, etl.SUCCESS_REGISTRY):
        for family in registry.collect():
            names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return names


def test_alerts_query_only_metrics_the_components_export() -> None:
    exported = _exported_metric_names()
    used = {name for alert in _alerts() for name in OWN_METRIC.findall(alert["expr"])}
    assert used, "no metric found in the alert expressions"
    assert used <= exported, f"alerts query metrics no component exports: {used - exported}"


def test_the_prometheus_rule_is_gated_labelled_and_carries_the_file(
    rendered_default: list[dict[str, Any]], rendered_ci: dict[str, list[dict[str, Any]]]
) -> None:
    assert not of_kind(rendered_default, "PrometheusRule")
    (rule,) = of_kind(rendered_ci["monitoring-values.yaml"], "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    expected = yaml.safe_load(RULES.read_text())["groups"]
    base = "https://git.example.com/airline-streaming/blob/main/"  # ci/monitoring-values.yaml
    for group in expected:
        for alert in group["rules"]:
            alert["annotations"]["runbook_url"] = base + alert["annotations"]["runbook_url"]
    assert rule["spec"]["groups"] == expected
