"""Each topic's wanted shape comes from the settings (shared values, `.dlq` retention, per-topic
overrides), and an existing topic's differences name the topic, the setting and both values."""

from __future__ import annotations

import pytest

from marketsense.common.bus.topics import TopicPolicy, TopicSpec, mismatches
from marketsense.common.settings import CommonSettings, KafkaTopicOverride

DAY_MS = 86_400_000


@pytest.fixture
def policy() -> TopicPolicy:
    """Production-like settings with one override on an event topic and one on its `.dlq`."""
    return TopicPolicy.from_settings(
        CommonSettings.model_validate(
            {
                "kafka_topic_partitions": 12,
                "kafka_topic_replication_factor": 3,
                "kafka_topic_min_insync_replicas": 2,
                "kafka_topic_retention_ms": 7 * DAY_MS,
                "kafka_dlq_retention_ms": 30 * DAY_MS,
                "kafka_topic_overrides": {
                    "raw.ready": {"partitions": 24},
                    "raw.ready.dlq": {"retention_ms": -1},
                },
            }
        )
    )


def test_an_event_topic_takes_the_shared_settings(policy: TopicPolicy) -> None:
    assert policy.spec("features.ready") == TopicSpec(12, 3, 2, 7 * DAY_MS)
    assert policy.spec("features.ready").configs() == {
        "min.insync.replicas": "2",
        "retention.ms": str(7 * DAY_MS),
    }


def test_a_dead_letter_topic_keeps_records_for_the_dlq_retention(policy: TopicPolicy) -> None:
    assert policy.spec("features.ready.dlq") == TopicSpec(12, 3, 2, 30 * DAY_MS)
    assert policy.setting("features.ready.dlq", "retention_ms") == "kafka_dlq_retention_ms"


def test_an_override_changes_only_what_it_names(policy: TopicPolicy) -> None:
    assert policy.spec("raw.ready") == TopicSpec(24, 3, 2, 7 * DAY_MS)
    assert policy.spec("raw.ready.dlq") == TopicSpec(12, 3, 2, -1)
    assert (
        policy.setting("raw.ready", "partitions") == "kafka_topic_overrides[raw.ready].partitions"
    )
    assert policy.setting("raw.ready", "retention_ms") == "kafka_topic_retention_ms"


def test_a_topic_as_configured_has_no_mismatch(policy: TopicPolicy) -> None:
    actual = policy.spec("raw.ready")

    assert mismatches(policy, topic="prod.raw.ready", name="raw.ready", actual=actual) == []


def test_each_difference_names_the_topic_the_setting_and_both_values(policy: TopicPolicy) -> None:
    actual = TopicSpec(partitions=4, replication_factor=1, min_insync_replicas=2, retention_ms=-1)

    found = mismatches(policy, topic="prod.raw.ready.dlq", name="raw.ready.dlq", actual=actual)

    assert [(m.setting, m.wanted, m.actual) for m in found] == [
        ("kafka_topic_partitions", 12, 4),
        ("kafka_topic_replication_factor", 3, 1),
    ]
    assert found[0].message() == (
        "Kafka topic prod.raw.ready.dlq has partitions 4, but kafka_topic_partitions wants 12; "
        "the services do not change an existing topic: alter it, or the setting"
    )
    assert "has retention.ms 1000, but kafka_topic_retention_ms wants 604800000" in (
        mismatches(
            policy,
            topic="prod.model.promoted",
            name="model.promoted",
            actual=TopicSpec(12, 3, 2, 1000),
        )[0].message()
    )


def test_the_default_policy_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETSENSE_KAFKA_TOPIC_PARTITIONS", "40")

    assert TopicPolicy.defaults().spec("raw.ready") == TopicSpec(4, 1, 1, 7 * DAY_MS)
    assert TopicPolicy.defaults().overrides == {}


def test_an_override_is_read_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETSENSE_KAFKA_TOPIC_OVERRIDES", '{"raw.ready": {"partitions": 24}}')

    settings = CommonSettings()

    assert settings.kafka_topic_overrides == {"raw.ready": KafkaTopicOverride(partitions=24)}
