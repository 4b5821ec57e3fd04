"""What the chart promises, read from its rendered objects: restricted pods, real probes,
resources, rollouts on config change, workload kinds and strategies, secrets only by reference,
the shared lake volume, gated ServiceMonitors and NetworkPolicies, the helm test, NOTES."""

from __future__ import annotations

import re
from typing import Any

import pytest
from k8s_support import (
    CHART,
    CI_VALUES,
    KUBERNETES_VERSION,
    SERVICES,
    Tools,
    component_workload,
    named,
    of_kind,
    pod_spec,
    pod_template_metadata,
    workloads,
)

pytestmark = pytest.mark.k8s

Objects = list[dict[str, Any]]
SECRET_ENV = {"DATABASE_URL", "KAFKA_SASL_PASSWORD"}


def all_pod_specs(objects: Objects) -> list[tuple[str, dict[str, Any]]]:
    specs = [(w["metadata"]["name"], pod_spec(w)) for w in workloads(objects)]
    return specs + [(p["metadata"]["name"], p["spec"]) for p in of_kind(objects, "Pod")]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_pod_is_restricted(render: Any, values: Any) -> None:
    objects = render(values)
    specs = all_pod_specs(objects)
    assert len(specs) >= 4
    for name, spec in specs:
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, name
        assert pod_sc["runAsUser"] == 10001, name
        assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        for container in spec["containers"] + spec.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert not sc.get("privileged"), name
            assert container["resources"]["requests"] and container["resources"]["limits"], name
            assert set(container["resources"]["limits"]) >= {"cpu", "memory"}, name


def test_read_only_root_gets_an_empty_dir_for_tmp(rendered_default: Objects) -> None:
    for workload in workloads(rendered_default):
        spec = pod_spec(workload)
        volumes = {v["name"]: v for v in spec["volumes"]}
        (container,) = spec["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], workload["metadata"]["name"]


def test_services_probe_real_state_on_the_metrics_port(rendered_default: Objects) -> None:
    for component in SERVICES:
        (container,) = pod_spec(component_workload(rendered_default, component))["containers"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_config_and_secret_changes_roll_the_pods(render: Any, rendered_default: Objects) -> None:
    before = {w["metadata"]["name"]: pod_template_metadata(w)["annotations"]
              for w in workloads(rendered_default)}
    for checksums in before.values():
        assert {"checksum/config", "checksum/secret"} <= set(checksums)
    changed = render(extra=("--set", "log.level=DEBUG",
                            "--set", "secrets.databaseUrl=postgresql://u:p@db/x"))
    for workload in workloads(changed):
        after = pod_template_metadata(workload)["annotations"]
        name = workload["metadata"]["name"]
        assert after["checksum/config"] != before[name]["checksum/config"], name
        assert after["checksum/secret"] != before[name]["checksum/secret"], name


def test_workload_kinds_and_update_strategies(rendered_default: Objects) -> None:
    producer = component_workload(rendered_default, "producer")
    assert producer["kind"] == "Deployment"
    assert producer["spec"]["strategy"] == {"type": "Recreate"}
    lake_writer = component_workload(rendered_default, "lakeWriter")
    assert lake_writer["kind"] == "Deployment"
    assert lake_writer["spec"]["strategy"] == {"type": "Recreate"}
    engine = component_workload(rendered_default, "engine")
    assert engine["kind"] == "StatefulSet"
    assert engine["spec"]["podManagementPolicy"] == "Parallel"
    assert engine["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert engine["spec"]["serviceName"] == "airline-engine"
    (container,) = pod_spec(engine)["containers"]
    instance = [e for e in container["env"] if e["name"] == "KAFKA_GROUP_INSTANCE_ID"]
    assert instance == [{"name": "KAFKA_GROUP_INSTANCE_ID",
                         "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]


def test_etl_is_a_cron_job_that_never_overlaps(rendered_default: Objects) -> None:
    cron = component_workload(rendered_default, "etl")
    assert cron["kind"] == "CronJob"
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["schedule"] and spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] > 0 and job["backoffLimit"] >= 0
    assert job["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_secrets_only_through_secret_key_refs(render: Any, values: Any) -> None:
    objects = render(values)
    for config_map in of_kind(objects, "ConfigMap"):
        assert not SECRET_ENV & set(config_map.get("data", {})), config_map["metadata"]["name"]
        for value in config_map.get("data", {}).values():
            assert not re.search(r"://[^/\s]*:[^@/\s]+@", value), "credentials in a ConfigMap"
    for _, spec in all_pod_specs(objects):
        for container in spec["containers"]:
            for item in container.get("env", []):
                if item["name"] in SECRET_ENV:
                    assert set(item) == {"name", "valueFrom"}, item
                    assert "secretKeyRef" in item["valueFrom"], item
            assert not any("secretRef" in ref for ref in container.get("envFrom", []))
    database = [item for w in workloads(objects) for c in pod_spec(w)["containers"]
                for item in c.get("env", []) if item["name"] == "DATABASE_URL"]
    assert len(database) == 1, "exactly one workload (the ETL) gets DATABASE_URL"


def test_existing_secret_replaces_the_charts_secret(render: Any) -> None:
    objects = render(extra=("--set", "secrets.existingSecret=prod-credentials"))
    assert not of_kind(objects, "Secret")
    refs = {item["valueFrom"]["secretKeyRef"]["name"]
            for w in workloads(objects) for c in pod_spec(w)["containers"]
            for item in c.get("env", []) if "secretKeyRef" in item.get("valueFrom", {})}
    assert refs == {"prod-credentials"}


def test_the_lake_claim_is_shared_by_lake_writer_and_etl(rendered_default: Objects) -> None:
    (claim,) = of_kind(rendered_default, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    for component in ("lakeWriter", "etl"):
        spec = pod_spec(component_workload(rendered_default, component))
        claims = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]
                  if "persistentVolumeClaim" in v]
        assert claims == [claim["metadata"]["name"]], component
    values = (CHART / "values.yaml").read_text()
    assert "ReadWriteMany" in values and "one node" in values.lower()


def test_service_monitors_are_gated_and_labelled_for_kube_prometheus_stack(
    rendered_default: Objects, rendered_ci: dict[str, Objects]
) -> None:
    assert not of_kind(rendered_default, "ServiceMonitor")
    monitors = of_kind(rendered_ci["monitoring-values.yaml"], "ServiceMonitor")
    assert len(monitors) == len(SERVICES)
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_network_policies_are_gated(rendered_default: Objects,
                                    rendered_ci: dict[str, Objects]) -> None:
    assert not of_kind(rendered_default, "NetworkPolicy")
    policies = of_kind(rendered_ci["production-values.yaml"], "NetworkPolicy")
    assert len(policies) == 4
    etl = named(policies, "NetworkPolicy", "airline-etl")
    assert etl["spec"]["ingress"] == []


def test_topics_follow_values_dev_one_replica_production_three(
    rendered_default: Objects, rendered_ci: dict[str, Objects]
) -> None:
    dev = of_kind(rendered_default, "KafkaTopic")
    assert dev and all(t["spec"]["replicas"] == 1 for t in dev)
    assert all("min.insync.replicas" not in t["spec"]["config"] for t in dev)
    prod = of_kind(rendered_ci["production-values.yaml"], "KafkaTopic")
    assert prod and all(t["spec"]["replicas"] == 3 for t in prod)
    assert all(t["spec"]["config"]["min.insync.replicas"] == "2" for t in prod)
    for topic in dev + prod:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", topic["metadata"]["name"])
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "airline"


def test_engine_replicas_are_bounded_by_partitions(k8s_tools: Tools) -> None:
    result = k8s_tools.helm("template", "airline", str(CHART), "--kube-version",
                            KUBERNETES_VERSION, "--set", "engine.replicas=4", check=False)
    assert result.returncode != 0
    assert "must not exceed topics.partitions" in result.stderr


def test_values_schema_rejects_a_second_producer(k8s_tools: Tools) -> None:
    result = k8s_tools.helm("template", "airline", str(CHART), "--set", "producer.replicas=2",
                            check=False)
    assert result.returncode != 0 and "producer/replicas" in result.stderr


def notes(k8s_tools: Tools, *extra: str) -> str:
    out = k8s_tools.helm("install", "airline", str(CHART), "--dry-run=client", "--namespace",
                         "airline", *extra).stdout
    return out[out.index("NOTES:"):]


def test_notes_tell_tableau_grafana_logs_and_warn_at_the_engine_bound(k8s_tools: Tools) -> None:
    text = notes(k8s_tools)
    assert "kubectl -n airline port-forward svc/postgres 5432:5432" in text
    assert "kubectl -n airline logs" in text
    assert "helm test airline" in text
    assert "WARNING" not in text
    bounded = notes(k8s_tools, "--set", "engine.replicas=3", "--values",
                    str(CHART / "ci" / "monitoring-values.yaml"))
    assert "WARNING: engine.replicas is at its bound" in bounded
    assert "port-forward svc/kube-prometheus-stack-grafana 3000:80" in bounded


def test_helm_test_asks_every_services_readyz(k8s_tools: Tools) -> None:
    """The helm test pod's command, run as a process against a local /readyz answering 200."""
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import yaml
    from k8s_support import VENV_BIN
    out = k8s_tools.helm("template", "airline", str(CHART), "--show-only",
                         "templates/tests/test-readyz.yaml").stdout
    (container,) = yaml.safe_load(out)["spec"]["containers"]
    code, *urls = container["args"]
    assert urls == ["http://airline-producer:8001/readyz", "http://airline-engine:8002/readyz",
                    "http://airline-lake-writer:8003/readyz"]
    asked: list[str] = []

    class Ready(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200 if self.path.startswith("/readyz?") else 404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        local = [re.sub(r"//([^/:]+):\d+/readyz", rf"//127.0.0.1:{port}/readyz?\1", u)
                 for u in urls]
        command = [str(VENV_BIN / container["command"][0]), *container["command"][1:]]
        result = subprocess.run([*command, code, *local], capture_output=True, text=True,
                                timeout=60, check=False)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(asked) == sorted(f"/readyz?{u.split('/')[2].split(':')[0]}" for u in urls)


def test_grafana_dashboard_is_gated_and_queries_real_metrics(
    rendered_default: Objects, rendered_ci: dict[str, Objects]
) -> None:
    import json

    from k8s_support import REPO_ROOT
    assert not [c for c in of_kind(rendered_default, "ConfigMap")
                if "grafana_dashboard" in c["metadata"].get("labels", {})]
    (config_map,) = [c for c in of_kind(rendered_ci["monitoring-values.yaml"], "ConfigMap")
                     if c["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    (text,) = config_map["data"].values()
    dashboard = json.loads(text)
    defined = set()
    for path in [*REPO_ROOT.glob("services/*/src/*/metrics.py"),
                 *REPO_ROOT.glob("jobs/*/src/*/metrics.py")]:
        defined |= set(re.findall(r"(?:Counter|Gauge|Histogram|Summary)\(\s*\"(\w+)\"",
                                  path.read_text()))
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"\b([a-z_]+)\{", target["expr"])} - {"up"}
    assert used and used <= defined, f"dashboard queries unknown metrics: {used - defined}"
