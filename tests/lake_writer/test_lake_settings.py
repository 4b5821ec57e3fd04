"""Settings and the command line."""

from pathlib import Path

import pytest
from airline_core import config
from airline_lake_writer.settings import Settings


def load_settings(argv: list[str]) -> Settings:
    """How the command reads its settings (``run_service`` calls exactly this)."""
    return config.load(Settings, argv, prog="airline-lake-writer", description="")


def test_defaults_and_names() -> None:
    settings = config.from_values(Settings, {}, {})
    assert (settings.metrics_port, settings.group_id, settings.lake_dir, settings.new_source) == (
        8003, "airline-lake-writer", Path("lake"), False)
    names = config.env_names(Settings)
    for name in ("LAKE_DIR", "LAKE_ROLL_MAX_RECORDS", "LAKE_ROLL_MAX_BYTES",
                 "LAKE_IDLE_FLUSH_SECONDS", "LAKE_NEW_SOURCE", "KAFKA_GROUP_ID", "METRICS_PORT",
                 "STOP_WHEN_IDLE_SECONDS"):
        assert name in names


def test_new_source_is_a_bare_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKE_NEW_SOURCE", raising=False)
    assert load_settings(["--new-source"]).new_source is True
    assert load_settings(["--new-source", "false"]).new_source is False
    assert load_settings([]).new_source is False


def test_bad_values_stop_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load_settings(["--roll-max-records", "0"])
    assert exit_info.value.code == 2
    assert "LAKE_ROLL_MAX_RECORDS" in capsys.readouterr().err
