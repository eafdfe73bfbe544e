"""On a real broker, the bus creates missing topics as the settings describe them, and warns,
naming topic, setting and both values, when an existing topic differs from them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from prometheus_client import REGISTRY

from marketsense.common.bus.kafka import KafkaBus
from marketsense.common.bus.kafka_topics import TopicCreationError
from marketsense.common.bus.topics import TopicPolicy
from marketsense.common.settings import KafkaTopicOverride
from tests.conftest import INTEGRATION, infra

pytestmark = [INTEGRATION, pytest.mark.timeout(120)]

DAY_MS = 86_400_000
POLICY = TopicPolicy(
    partitions=3,
    replication_factor=1,
    min_insync_replicas=1,
    retention_ms=DAY_MS,
    dlq_retention_ms=2 * DAY_MS,
    overrides={"raw.ready.dlq": KafkaTopicOverride(partitions=1)},
)


@pytest.fixture
async def admin(prefix: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client on the test broker; deletes this test's topics afterwards."""
    client = AIOKafkaAdminClient(bootstrap_servers=infra("MARKETSENSE_TEST_KAFKA"))
    await client.start()
    yield client
    ours = [t for t in await client.list_topics() if t.startswith(prefix)]
    if ours:
        await client.delete_topics(ours)
    await client.close()


async def _shape(admin: AIOKafkaAdminClient, topic: str) -> tuple[int, str, str]:
    """Partitions, min.insync.replicas and retention.ms as the broker reports them."""
    [described] = await admin.describe_topics([topic])
    [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    [resource] = response.to_object()["resources"]
    configs = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
    return len(described["partitions"]), configs["min.insync.replicas"], configs["retention.ms"]


def _mismatch_gauge(topic: str, setting: str) -> float | None:
    return REGISTRY.get_sample_value(
        "marketsense_kafka_topic_config_mismatches", {"topic": topic, "setting": setting}
    )


async def test_topics_are_created_as_configured_and_a_changed_one_is_named_at_start(
    prefix: str, admin: AIOKafkaAdminClient, caplog: pytest.LogCaptureFixture
) -> None:
    bus = KafkaBus(
        bootstrap_servers=infra("MARKETSENSE_TEST_KAFKA"), topic_prefix=prefix, topic_policy=POLICY
    )
    topic, dlq = f"{prefix}raw.ready", f"{prefix}raw.ready.dlq"

    assert await bus.ensure_topics({topic, dlq}) == []
    assert await _shape(admin, topic) == (3, "1", str(DAY_MS))
    assert await _shape(admin, dlq) == (1, "1", str(2 * DAY_MS))
    # Present and as configured: checked, and found equal.
    assert await bus.ensure_topics({topic, dlq}) == []
    assert _mismatch_gauge(topic, "retention_ms") == 0

    # Someone shortens the event topic's retention by hand.
    await admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "60000"})]
    )
    with caplog.at_level(logging.WARNING, logger="marketsense.common.bus.kafka_topics"):
        found = await bus.ensure_topics({topic, dlq})

    assert [(m.topic, m.setting, m.wanted, m.actual) for m in found] == [
        (topic, "kafka_topic_retention_ms", DAY_MS, 60000)
    ]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"Kafka topic {topic} has retention.ms 60000, but kafka_topic_retention_ms wants "
        f"{DAY_MS}; the services do not change an existing topic: alter it, or the setting"
    ]
    assert _mismatch_gauge(topic, "retention_ms") == 1
    assert _mismatch_gauge(dlq, "retention_ms") == 0
    assert await _shape(admin, topic) == (3, "1", "60000")  # warned about, left as it is


async def test_more_copies_than_the_broker_has_fail_the_start_naming_the_topic(
    prefix: str, admin: AIOKafkaAdminClient
) -> None:
    policy = TopicPolicy(
        partitions=1,
        replication_factor=3,
        min_insync_replicas=2,
        retention_ms=DAY_MS,
        dlq_retention_ms=DAY_MS,
    )
    bus = KafkaBus(
        bootstrap_servers=infra("MARKETSENSE_TEST_KAFKA"), topic_prefix=prefix, topic_policy=policy
    )

    with pytest.raises(TopicCreationError, match=f"create topic {prefix}task.failed as "):
        await bus.ensure_topics({f"{prefix}task.failed"})
    assert f"{prefix}task.failed" not in await admin.list_topics()
