"""The bus the settings ask for: Kafka when brokers are configured, else the in-process bus,
with the deployment's prefix and retry policy either way."""

from __future__ import annotations

from pathlib import Path

from marketsense.common.bus import InProcessBus
from marketsense.common.bus.factory import bus_from_settings
from marketsense.common.bus.kafka import KafkaBus
from marketsense.common.settings import CommonSettings


def test_without_brokers_the_bus_is_in_process_with_the_settings_policy(tmp_path: Path) -> None:
    settings = CommonSettings(
        home=tmp_path,
        kafka_bootstrap_servers=None,
        topic_prefix="staging.",
        handler_max_attempts=5,
        handler_retry_base_seconds=0.5,
    )

    bus = bus_from_settings(settings)

    assert isinstance(bus, InProcessBus)
    assert (bus.topic_prefix, bus.max_attempts, bus.retry_base) == ("staging.", 5, 0.5)


def test_with_brokers_the_bus_is_kafka_with_the_settings_policy_and_client_id(
    tmp_path: Path,
) -> None:
    settings = CommonSettings(
        home=tmp_path,
        kafka_bootstrap_servers="kafka-0:9092,kafka-1:9092",
        topic_prefix="prod.",
        handler_max_attempts=2,
        handler_retry_base_seconds=1.5,
        kafka_topic_partitions=12,
        kafka_topic_replication_factor=3,
        kafka_topic_min_insync_replicas=2,
    )

    bus = bus_from_settings(settings, client_id="marketsense-processing")

    assert isinstance(bus, KafkaBus)
    assert bus.bootstrap_servers == "kafka-0:9092,kafka-1:9092"
    assert bus.client_id == "marketsense-processing"
    assert (bus.topic_prefix, bus.max_attempts, bus.retry_base) == ("prod.", 2, 1.5)
    spec = bus.topic_policy.spec("raw.ready")
    assert (spec.partitions, spec.replication_factor, spec.min_insync_replicas) == (12, 3, 2)


def test_an_empty_broker_list_means_the_in_process_bus(tmp_path: Path) -> None:
    settings = CommonSettings(home=tmp_path, kafka_bootstrap_servers="")

    assert isinstance(bus_from_settings(settings), InProcessBus)
