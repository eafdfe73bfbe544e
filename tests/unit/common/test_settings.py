"""Shared settings: read from `MARKETSENSE_*` variables, with the embedded defaults when
infrastructure is unset; database URLs as operators hand them out get the async driver."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from marketsense.common.settings import CommonSettings


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://app:pw@db-rw.ns:5432/app", "postgresql+asyncpg://app:pw@db-rw.ns:5432/app"),
        ("postgres://app:pw@db:5432/app", "postgresql+asyncpg://app:pw@db:5432/app"),
        ("postgresql+asyncpg://a@db/x", "postgresql+asyncpg://a@db/x"),
        ("sqlite+aiosqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
    ],
)
def test_libpq_uris_get_the_asyncpg_driver(given: str, used: str) -> None:
    assert CommonSettings(database_url=SecretStr(given)).resolved_database_url() == used


@pytest.fixture
def no_marketsense_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No `MARKETSENSE_*` variable of the test command reaches the settings."""
    for name in list(os.environ):
        if name.startswith("MARKETSENSE_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("no_marketsense_environment")
def test_unset_infrastructure_means_sqlite_and_a_folder_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = CommonSettings(home=Path("state"))

    assert settings.resolved_database_url() == (
        f"sqlite+aiosqlite:///{tmp_path.resolve()}/state/marketsense.db"
    )
    assert settings.resolved_object_store_url() == (tmp_path / "state" / "objects").as_uri()
    assert settings.kafka_bootstrap_servers is None


def test_a_configured_object_store_is_used_as_given(tmp_path: Path) -> None:
    settings = CommonSettings(home=tmp_path, object_store_url="s3://bucket/prefix")

    assert settings.resolved_object_store_url() == "s3://bucket/prefix"


@pytest.mark.usefixtures("no_marketsense_environment")
def test_settings_are_read_from_marketsense_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETSENSE_DATABASE_URL", "postgres://app:pw@db/app")
    monkeypatch.setenv("MARKETSENSE_TOPIC_PREFIX", "staging.")
    monkeypatch.setenv("MARKETSENSE_HANDLER_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("MARKETSENSE_LOG_JSON", "false")
    monkeypatch.setenv("MARKETSENSE_NOT_A_SETTING", "ignored")
    monkeypatch.setenv("TOPIC_PREFIX", "without the prefix: not ours")

    settings = CommonSettings()

    assert settings.resolved_database_url() == "postgresql+asyncpg://app:pw@db/app"
    assert settings.topic("raw.ready") == "staging.raw.ready"
    assert (settings.handler_max_attempts, settings.log_json) == (5, False)


@pytest.mark.usefixtures("no_marketsense_environment")
def test_without_a_prefix_topics_keep_their_names() -> None:
    assert CommonSettings().topic("features.ready") == "features.ready"


def test_the_database_url_and_s3_keys_stay_out_of_the_settings_repr() -> None:
    settings = CommonSettings(
        database_url=SecretStr("postgresql://app:db-secret@db/app"),
        s3_secret_access_key=SecretStr("s3-secret"),
    )

    assert "db-secret" not in repr(settings)
    assert "s3-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("handler_max_attempts", 0),
        ("handler_retry_base_seconds", -0.1),
        ("api_key_cache_seconds", -1),
    ],
)
def test_limits_outside_their_range_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        CommonSettings.model_validate({field: value})


def test_an_override_of_a_topic_that_does_not_exist_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match=r"no event topic named raw\.raedy; topics are: "):
        CommonSettings.model_validate({"kafka_topic_overrides": {"raw.raedy": {"partitions": 2}}})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"kafka_topic_replication_factor": 1, "kafka_topic_min_insync_replicas": 2},
            "kafka_topic_min_insync_replicas 2 is more than kafka_topic_replication_factor 1: ",
        ),
        (
            {
                "kafka_topic_replication_factor": 3,
                "kafka_topic_min_insync_replicas": 2,
                "kafka_topic_overrides": {"task.failed.dlq": {"replication_factor": 1}},
            },
            "kafka_topic_min_insync_replicas 2 is more than kafka_topic_replication_factor 1 "
            r"\(with kafka_topic_overrides for task.failed.dlq\)",
        ),
    ],
)
def test_more_in_sync_replicas_than_copies_is_refused(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        CommonSettings.model_validate(values)
