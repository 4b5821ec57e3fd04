"""The chart's workloads as real containers (``make k8s-e2e``).

The four images are built with podman from the project's Dockerfile (airline_devstack.images),
the chart is rendered with ``helm template``, each workload becomes the Pod a cluster would run
(airline_devstack.kube_play, whose rules the tests below check on their own) and is played with
``podman kube play`` against the session's real Kafka and Postgres, over the loopback (host
networking). Then:

* one malformed booking is sent; producer, engine (pod ``airline-engine-0``: its StatefulSet
  identity) and lake writer run until the lake holds every committed record; the ETL CronJob
  runs once as a Pod;
* Kafka = lake = warehouse per topic, the same reconciliation as ``make demo``;
* every container ran as uid 10001 with a read-only root filesystem (checked inside the running
  containers, not only in their configuration), each service's ``/readyz`` turned 200, and
  every line of ``podman logs`` (what ``kubectl logs`` shows) is a JSON object;
* SIGTERM stops every service cleanly (exit 0).

What is changed from a cluster install is only what one host without an API server forces:
addresses (the session's broker and Postgres, given as values, as a real install gives its
own), a topic prefix, group and transactional ids and the lake volume made unique on the shared
broker, free metrics ports, and a small fast schedule. The Postgres operator's Secret
(``postgres-app``, key ``uri``) is created here as CloudNativePG would create it.
Everything is removed afterwards, whatever happened.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from airline_core.topics import LAKE_TOPICS, physical_name
from airline_devstack import images
from airline_devstack.kube_play import Playable, PlayPod, to_playable
from airline_devstack.podman import PodmanError, podman
from airline_devstack.reconcile import format_table, lake_lines, read_topic_ids, reconcile
from airline_testkit.net import free_port
from confluent_kafka import Producer
from k8s_support import NAMESPACE, Tools, apply_kafka_topics, load_documents, template_args

pytestmark = [pytest.mark.containers, pytest.mark.kafka, pytest.mark.postgres]

APP_UID = 10001
RUN_TIMEOUT = 300.0
SERVICES = {"producer": "airline-producer", "engine": "airline-engine-0",
            "lakeWriter": "airline-lake-writer"}
ETL_POD = "airline-etl-manual"


def _missing_tools() -> list[str]:
    return [tool for tool in ("podman", "runc", "catatonit", "mmdebstrap")
            if shutil.which(tool) is None]


@pytest.fixture(scope="session")
def built_images() -> dict[str, str]:
    """The four images, built once per session ({chart key: reference})."""
    missing = _missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (tools/system-deps.sh installs them)")
    return images.build_all()


@dataclass
class Run:
    """One play of the chart: what was rendered and played, and what to clean up."""

    rendered: list[dict[str, Any]]
    playable: Playable
    prefix: str
    ports: dict[str, int]
    volume: str
    secrets: list[str] = field(default_factory=list)
    ready: dict[str, bool] = field(default_factory=dict)

    def container(self, pod: PlayPod) -> str:
        """podman names a played container ``<pod>-<container>``."""
        return f"{pod.name}-{pod.containers[0]['name']}"


def _render(k8s_tools: Tools, built: dict[str, str], ports: dict[str, int],
            values: dict[str, str]) -> list[dict[str, Any]]:
    sets = [f"{key}.image.repository={repository},{key}.image.tag={tag}"
            for key, (repository, tag) in ((k, ref.rsplit(":", 1)) for k, ref in built.items())]
    sets += [f"{key}.metricsPort={port}" for key, port in ports.items()]
    extra = [arg for item in sets for arg in ("--set", item)]
    extra += [arg for key, value in values.items() for arg in ("--set-string", f"{key}={value}")]
    return load_documents(k8s_tools.helm(*template_args([], *extra)).stdout)


def _cleanup(playable: Playable, volume: str, secrets: list[str]) -> None:
    for pod in playable.pods:
        podman("pod", "rm", "--force", "--time", "10", pod.name, check=False)
    for secret in secrets:
        podman("secret", "rm", secret, check=False)
    podman("volume", "rm", "--force", volume, check=False)


def _create_secret(name: str, data: dict[str, str], tmp: Path) -> None:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(data))
    podman("secret", "rm", name, check=False)
    podman("secret", "create", name, str(path))
    path.unlink()


def _play(run: Run, pod: PlayPod, tmp: Path) -> None:
    manifest = tmp / f"{pod.name}.yaml"
    manifest.write_text(yaml.safe_dump_all([*run.playable.configmaps, pod.manifest]))
    podman("kube", "play", str(manifest))


def _readyz(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _logs(container: str) -> list[str]:
    result = podman("logs", container, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def _lake_dir(volume: str) -> Path:
    return Path(podman("volume", "inspect", volume, "--format", "{{.Mountpoint}}").stdout.strip())


def _wait_for(what: str, condition: Callable[[], bool], run: Run, timeout: float = RUN_TIMEOUT,
              every: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key, name in SERVICES.items():
            run.ready[name] = run.ready.get(name, False) or _readyz(run.ports[key])
        if condition():
            return
        time.sleep(every)
    logs = {name: _logs(run.container(run.playable.pod(name)))[-5:] for name in SERVICES.values()}
    pytest.fail(f"timed out waiting for {what}; last log lines: {json.dumps(logs, indent=1)}")


@pytest.fixture
def played(k8s_tools: Tools, built_images: dict[str, str], kafka_bootstrap: str,
           isolated_database_url: str, unique_name: Callable[[str], str],
           tmp_path: Path) -> Iterator[Run]:
    """The rendered chart's services playing as containers, removed afterwards."""
    prefix = unique_name("k8s") + "-"
    ports = {key: free_port() for key in SERVICES}
    volume = unique_name("lake").replace("_", "-")
    values = {
        "kafka.bootstrapServers": kafka_bootstrap, "kafka.topicPrefix": prefix,
        "lake.persistence.existingClaim": volume,
        "engine.groupId": prefix + "engine", "lakeWriter.groupId": prefix + "lake-writer",
        "producer.config.PRODUCER_TRANSACTIONAL_ID": prefix + "producer",
        "producer.config.PRODUCER_FLIGHTS": "6", "producer.config.PRODUCER_DAYS": "2",
        "producer.config.PRODUCER_SPEED": "max",
    }
    rendered = _render(k8s_tools, built_images, ports, values)
    playable = to_playable(rendered, NAMESPACE)
    run = Run(rendered, playable, prefix, ports, volume)
    # What CloudNativePG creates for the Cluster's owner, and what the chart reads by default.
    secrets = {**playable.secrets, "postgres-app": {
        "uri": base64.b64encode(isolated_database_url.encode()).decode()}}
    _cleanup(playable, volume, list(secrets))  # what a killed earlier run may have left
    try:
        apply_kafka_topics(rendered, kafka_bootstrap)
        for name, data in secrets.items():
            _create_secret(name, data, tmp_path)
            run.secrets.append(name)
        assert playable.volumes == {volume: APP_UID}, playable.volumes
        podman("volume", "create", volume)
        # The kubelet applies the pod's fsGroup to the volume; podman does not.
        shutil.chown(_lake_dir(volume), APP_UID, APP_UID)
        for name in SERVICES.values():
            _play(run, playable.pod(name), tmp_path)
        yield run
    finally:
        _cleanup(playable, volume, run.secrets)


def _lake_has_everything(run: Run, bootstrap: str, cluster_id: str) -> Callable[[], bool]:
    """True once the lake holds every committed record of every lake topic, twice in a row (the
    engine has stopped writing)."""
    lake = _lake_dir(run.volume)
    previous: list[tuple[int, int]] = []

    def check() -> bool:
        counts = [(read_topic_ids(bootstrap, physical_name(t, run.prefix))[0],
                   lake_lines(lake, str(t), cluster_id)) for t in LAKE_TOPICS]
        done = counts == previous and all(k == lines for k, lines in counts)
        previous[:] = counts
        return done
    return check


def _dead_letter_reasons(lake: Path) -> str:
    """What the lake's dead letters say, counted: the first thing to read when counts differ."""
    found: Counter[tuple[str, str]] = Counter()
    for path in (lake / "raw" / "dead_letter").rglob("*.jsonl"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                letter = json.loads(line)
            except ValueError:
                found[("?", line[:80])] += 1
                continue
            found[(str(letter.get("source_topic")), str(letter.get("reason"))[:160])] += 1
    return "\n".join(f"{n:6} {topic:18} {reason}" for (topic, reason), n in found.most_common())


def test_the_charts_workloads_run_as_containers_and_reconcile(
    played: Run, kafka_bootstrap: str, kafka_broker: Any, isolated_database_url: str,
    tmp_path: Path,
) -> None:
    run, playable = played, played.playable
    # One malformed booking, as `make demo` sends: the engine dead-letters it, the lake keeps
    # it, the ETL rejects it, and every lake topic has events to reconcile.
    malformed = Producer({"bootstrap.servers": kafka_bootstrap, "log_level": 3})
    malformed.produce(f"{run.prefix}bookings", key=b"BAD", value=b'{"event_type": "Booking')
    assert malformed.flush(30) == 0
    producer = run.container(playable.pod("airline-producer"))
    _wait_for("the producer to finish its schedule", lambda: any(
        "schedule finished" in line for line in _logs(producer)), run)
    _wait_for("the lake to hold every committed record",
              _lake_has_everything(run, kafka_bootstrap, kafka_broker.cluster_id), run, every=2.0)

    # Inside the running containers: the user and a root filesystem that refuses writes.
    for name in SERVICES.values():
        container = run.container(playable.pod(name))
        uid = podman("exec", container, "id", "-u").stdout.strip()
        assert uid == str(APP_UID), f"{name} runs as uid {uid}"
        write = podman("exec", container, "touch", "/app/probe", check=False)
        assert write.returncode != 0 and "Read-only file system" in write.stderr, \
            f"{name}: the root filesystem accepted a write"
        info = podman("inspect", container, "--format",
                      "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}").stdout.split()
        assert info[0] == "true", f"{name}: {info}"
    assert all(run.ready.get(name) for name in SERVICES.values()), \
        f"/readyz never answered 200: {run.ready}"

    etl = playable.pod(ETL_POD)
    assert etl.workload_kind == "CronJob" and etl.run_once
    _play(run, etl, tmp_path)
    exit_code = podman("wait", run.container(etl), timeout=RUN_TIMEOUT).stdout.strip()
    assert exit_code == "0", f"the ETL exited {exit_code}: {_logs(run.container(etl))[-10:]}"

    counts = reconcile(kafka_bootstrap, run.prefix, _lake_dir(run.volume),
                       kafka_broker.cluster_id, isolated_database_url)
    table = format_table(counts)
    assert all(c.kafka_records for c in counts), f"topics without events:\n{table}"
    assert all(c.agrees for c in counts), (
        f"Kafka, lake and warehouse disagree:\n{table}\ndead letters in the lake (count, "
        f"source topic, reason):\n{_dead_letter_reasons(_lake_dir(run.volume))}")

    for name in SERVICES.values():
        podman("pod", "stop", "--time", "60", name)
    exits = {name: podman("inspect", run.container(playable.pod(name)), "--format",
                          "{{.State.ExitCode}}").stdout.strip() for name in SERVICES.values()}
    assert set(exits.values()) == {"0"}, f"exit codes after SIGTERM: {exits}"

    not_json: dict[str, list[str]] = {}
    for pod in [*(playable.pod(n) for n in SERVICES.values()), etl]:
        lines = _logs(run.container(pod))
        assert lines, f"{pod.name} logged nothing"
        bad = [line for line in lines if not _is_json_object(line)]
        if bad:
            not_json[pod.name] = bad[:3]
    assert not not_json, f"podman logs lines that are not JSON objects: {not_json}"


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def test_podman_errors_name_the_command() -> None:
    if shutil.which("podman") is None:
        pytest.skip("needs podman")
    with pytest.raises(PodmanError, match="podman volume inspect"):
        podman("volume", "inspect", "airline-no-such-volume")


def test_images_build_offline_from_the_wheelhouse(built_images: dict[str, str]) -> None:
    """Each image runs its component's console script as its entrypoint, with no network."""
    for key, ref in built_images.items():
        result = podman("run", "--rm", "--network", "none", "--read-only", ref, "--help")
        package = next(c.package for c in images.COMPONENTS if c.key == key)
        assert result.stdout.startswith(f"usage: {package}"), result.stdout[:200]
