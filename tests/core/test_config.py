"""Settings: env with documented defaults, flags win, one clear line for a bad value."""

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from airline_core import config
from airline_core.config import KafkaSettings, Secret, group, positive, setting
from airline_core.errors import ConfigError


@dataclasses.dataclass(frozen=True, kw_only=True)
class Demo:
    kafka: KafkaSettings = group(KafkaSettings)
    workers: int = setting("DEMO_WORKERS", 2, "worker count", check=positive)
    mode: Literal["fast", "safe"] = setting("DEMO_MODE", "safe", "mode")
    ratio: float = setting("DEMO_RATIO", 0.5, "a ratio")
    enabled: bool = setting("DEMO_ENABLED", False, "a switch")
    where: Path = setting("DEMO_DIR", Path("lake"), "a folder")
    token: Secret = setting("DEMO_TOKEN", Secret(""), "a secret", flag=None)
    name: str = setting("DEMO_NAME", help="required name")


def test_defaults_then_environment_then_explicit_values() -> None:
    built = config.from_values(Demo, environ={"DEMO_NAME": "x", "DEMO_WORKERS": "5"})
    assert (built.workers, built.mode, built.where, built.name) == (5, "safe", Path("lake"), "x")
    assert built.kafka.bootstrap_servers == "localhost:9092"
    wins = config.from_values(Demo, {"DEMO_WORKERS": "7"}, {"DEMO_NAME": "x", "DEMO_WORKERS": "5"})
    assert wins.workers == 7


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "DEMO_NAME is required"),
        ({"DEMO_NAME": "x", "DEMO_WORKERS": "many"}, "DEMO_WORKERS='many' is not a valid int"),
        ({"DEMO_NAME": "x", "DEMO_WORKERS": "0"}, "DEMO_WORKERS='0' must be greater than 0"),
        ({"DEMO_NAME": "x", "DEMO_MODE": "yolo"}, "DEMO_MODE='yolo' is not one of fast, safe"),
        ({"DEMO_NAME": "x", "DEMO_ENABLED": "perhaps"}, "DEMO_ENABLED='perhaps'"),
        ({"DEMO_NAME": "x", "KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
    ],
)
def test_bad_settings_name_the_setting(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.from_values(Demo, environ=environ)


def test_secrets_never_print() -> None:
    built = config.from_values(Demo, environ={"DEMO_NAME": "x", "DEMO_TOKEN": "hunter2"})
    assert "hunter2" not in repr(built)
    assert built.token.reveal() == "hunter2"
    url = "postgresql://airline:s3cret@db:5432/airline_dw"
    assert config.redact_url(url) == "postgresql://airline:***@db:5432/airline_dw"


def test_env_names_and_describe_cover_nested_groups() -> None:
    names = config.env_names(Demo)
    assert names[0] == "KAFKA_BOOTSTRAP_SERVERS"
    assert "DEMO_TOKEN" in names and "KAFKA_TOPIC_PREFIX" in names
    rows = {env: default for env, default, _ in config.describe(Demo)}
    assert rows["DEMO_NAME"] == "required" and rows["DEMO_WORKERS"] == "'2'"


def test_help_documents_env_and_default_and_bad_value_exits_2() -> None:
    parser = config.parser_for(Demo, "demo", "a demo")
    text = parser.format_help()
    assert "--workers" in text and "DEMO_WORKERS" in text and "default '2'" in text
    assert "--token" not in text  # secrets are not command line options
    code = (
        "import sys; from airline_core.topics_cli import TopicsSettings; "
        "from airline_core import config; "
        "config.load(TopicsSettings, ['--partitions', 'zero'], prog='t', description='')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2
    expected = "t: configuration error: TOPIC_PARTITIONS='zero' is not a valid int"
    assert done.stderr.strip() == expected


@pytest.mark.parametrize(("argv", "enabled"), [
    (["--enabled"], True), (["--enabled", "--workers", "3"], True),
    (["--enabled", "false"], False), (["--enabled", "true"], True), ([], False)])
def test_a_boolean_is_a_bare_flag_or_takes_a_value(argv: list[str], enabled: bool) -> None:
    built = config.load(Demo, argv, prog="demo", description="", environ={"DEMO_NAME": "x"})
    assert built.enabled is enabled
