"""docs/settings.md is generated from the code and must be current."""

from airline_devstack import settings_doc


def test_settings_document_is_current() -> None:
    assert settings_doc.target().read_text() == settings_doc.render(), (
        "docs/settings.md is stale: run `.venv/bin/python -m airline_devstack.settings_doc`")


def test_every_command_documents_its_own_settings() -> None:
    text = settings_doc.render()
    for env in ("PRODUCER_SEED", "ENGINE_COMMIT_INTERVAL_MS", "LAKE_ROLL_MAX_RECORDS",
                "ETL_MAX_REJECT_SHARE", "DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "LOG_FORMAT"):
        assert f"`{env}`" in text, env
