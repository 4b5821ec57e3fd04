"""A throwaway Prometheus server (Debian's `prometheus`) that scrapes given targets.

Used to prove the chart's dashboard queries and alerting rules against a real Prometheus and
the components' real `/metrics`: each target carries the labels a kube-prometheus-stack
ServiceMonitor would give it (`namespace`, `pod`, `job` = the Service's name), so a query that
works here works in the cluster. Nothing is kept: the TSDB lives in `data_dir`.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from airline_core.logging import get_logger

from airline_devstack._proc import PidFileProcess, port_open

log = get_logger(__name__)


class PrometheusNotInstalledError(RuntimeError):
    """`prometheus` is not on PATH (Debian: `apt-get install prometheus`)."""


def prometheus_bin() -> str | None:
    return shutil.which("prometheus")


def scrape_config(targets: Iterable[tuple[str, Mapping[str, str]]], rule_files: Iterable[Path],
                  interval: str = "250ms") -> dict[str, Any]:
    """A Prometheus configuration scraping each ``(host:port, labels)`` target at ``interval``
    and evaluating ``rule_files`` just as often."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [{
            "job_name": "airline",
            "scrape_timeout": interval,
            # Target labels as a ServiceMonitor sets them (a static `job` replaces job_name).
            "static_configs": [{"targets": [address], "labels": dict(labels)}
                               for address, labels in targets],
        }],
    }


class PrometheusServer:
    """prometheus on 127.0.0.1:`port` with `config`, TSDB and log in `data_dir`."""

    def __init__(self, port: int, data_dir: Path, config: Mapping[str, Any],
                 die_with_parent: bool = False) -> None:
        self.port = port
        self.data_dir = Path(data_dir).resolve()
        self.config = dict(config)
        self.die_with_parent = die_with_parent
        self._process = PidFileProcess(self.data_dir / "prometheus.pid",
                                       marker=str(self.data_dir))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait for ``/-/ready``; raises PrometheusNotInstalledError without it."""
        binary = prometheus_bin()
        if binary is None:
            raise PrometheusNotInstalledError(
                "prometheus is not installed (apt-get install prometheus)")
        if port_open("127.0.0.1", self.port):
            raise RuntimeError(f"port {self.port} is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config_file = self.data_dir / "prometheus.yml"
        config_file.write_text(json.dumps(self.config, indent=2))  # JSON is YAML
        argv = [binary, f"--config.file={config_file}",
                f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]
        self._process.spawn(argv, self.data_dir / "prometheus.log",
                            die_with_parent=self.die_with_parent)
        deadline = time.monotonic() + timeout
        while not self._ready():
            if not self._process.is_running() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prometheus did not start; see {self.data_dir}/prometheus.log")
            time.sleep(0.2)
        log.info("prometheus up", url=self.url)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str | float) -> Any:
        """``GET /api/v1/<path>``; the ``data`` of a successful answer (raises otherwise)."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:  # 400/422: a bad query, with Prometheus' reason
            body = json.load(e)
        if body.get("status") != "success":
            raise ValueError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def stop(self, timeout: float = 10.0) -> None:
        self._process.stop(timeout)
