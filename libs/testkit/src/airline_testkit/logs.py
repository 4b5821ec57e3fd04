"""The JSON log records of a component's stderr (``LOG_FORMAT=json``).

Tests and benchmarks learn what a process did from its log events ("engine stopped", "roll
landed"...); librdkafka's own lines and anything cut off mid-line are not JSON and are skipped.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any


def json_logs(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` that is a JSON object, parsed, in order."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
    return records
