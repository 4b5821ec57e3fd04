#!/usr/bin/env python3
"""Rewrite the ``topics`` block of the chart's values.yaml from the topic registry.

The block between ``# BEGIN topics`` and ``# END topics`` is replaced by the YAML form of
``airline_core.topics_cli.export_values`` (partitions 3, replicas 1: the dev defaults;
production values override ``topics.replicas``). Run with the workspace venv:
``.venv/bin/python tools/k8s/sync-topics.py`` (``--check`` exits 1 when out of date).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from airline_core import config
from airline_core.topics_cli import TopicsSettings, export_values

VALUES = Path(__file__).resolve().parents[2] / "helm" / "airline-streaming" / "values.yaml"
BEGIN, END = "# BEGIN topics", "# END topics"


def render() -> str:
    """The generated block (without the markers' own lines' trailing text)."""
    values = export_values(config.from_values(TopicsSettings, environ={}))
    return yaml.safe_dump({"topics": values}, sort_keys=False, width=100)


def main(argv: list[str]) -> int:
    text = VALUES.read_text()
    start = text.index("\n", text.index(BEGIN))          # end of the BEGIN comment lines
    start = text.index("topics:", start)
    end = text.index(END)
    updated = text[:start] + render() + text[end:]
    if "--check" in argv:
        return 0 if updated == text else 1
    VALUES.write_text(updated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
