"""What each Kafka topic should be and how an existing one differs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from marketsense.common.bus.base import DLQ_SUFFIX
from marketsense.common.settings import CommonSettings, KafkaTopicOverride

TOPIC_CONFIGS = {"min_insync_replicas": "min.insync.replicas", "retention_ms": "retention.ms"}
"""Fields of a topic spec that are topic configs, with Kafka's name for each."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic's shape: what the services create it with, or what the broker reports."""

    partitions: int
    replication_factor: int
    min_insync_replicas: int
    retention_ms: int

    def configs(self) -> dict[str, str]:
        """The topic configs to create the topic with, as Kafka names and strings."""
        return {kafka: str(getattr(self, name)) for name, kafka in TOPIC_CONFIGS.items()}


@dataclass(frozen=True)
class Mismatch:
    """A topic whose broker-side value differs from the configured one."""

    topic: str
    setting: str
    """The setting that states the wanted value, e.g. `kafka_topic_partitions`."""
    field: str
    wanted: int
    actual: int

    def message(self) -> str:
        """A log line naming the topic, the setting, the wanted and the actual value."""
        kafka = TOPIC_CONFIGS.get(self.field, self.field.replace("_", " "))
        return (
            f"Kafka topic {self.topic} has {kafka} {self.actual}, but {self.setting} wants "
            f"{self.wanted}; the services do not change an existing topic: alter it, or the setting"
        )


@dataclass(frozen=True)
class TopicPolicy:
    """The configured shape of every topic: shared defaults, `.dlq` retention, overrides."""

    partitions: int
    replication_factor: int
    min_insync_replicas: int
    retention_ms: int
    dlq_retention_ms: int
    overrides: Mapping[str, KafkaTopicOverride] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> TopicPolicy:
        """The policy the `kafka_topic_*` settings describe."""
        return cls(
            partitions=settings.kafka_topic_partitions,
            replication_factor=settings.kafka_topic_replication_factor,
            min_insync_replicas=settings.kafka_topic_min_insync_replicas,
            retention_ms=settings.kafka_topic_retention_ms,
            dlq_retention_ms=settings.kafka_dlq_retention_ms,
            overrides=dict(settings.kafka_topic_overrides),
        )

    @classmethod
    def defaults(cls) -> TopicPolicy:
        """The policy of the settings' defaults, whatever the environment holds."""
        return cls.from_settings(CommonSettings.model_construct())

    def spec(self, name: str) -> TopicSpec:
        """The wanted shape of a topic, by its name without the deployment's prefix."""
        return TopicSpec(**{f.name: self._value(name, f.name)[0] for f in fields(TopicSpec)})

    def setting(self, name: str, field_name: str) -> str:
        """The setting that states a topic's wanted value of one field."""
        return self._value(name, field_name)[1]

    def _value(self, name: str, field_name: str) -> tuple[int, str]:
        override = self.overrides.get(name)
        if override is not None and getattr(override, field_name) is not None:
            return getattr(override, field_name), f"kafka_topic_overrides[{name}].{field_name}"
        if field_name == "retention_ms" and name.endswith(DLQ_SUFFIX):
            return self.dlq_retention_ms, "kafka_dlq_retention_ms"
        return getattr(self, field_name), f"kafka_topic_{field_name}"


def mismatches(policy: TopicPolicy, *, topic: str, name: str, actual: TopicSpec) -> list[Mismatch]:
    """How an existing topic (`topic`; `name`, without the prefix) differs from the policy."""
    wanted = policy.spec(name)
    return [
        Mismatch(
            topic=topic,
            setting=policy.setting(name, f.name),
            field=f.name,
            wanted=getattr(wanted, f.name),
            actual=getattr(actual, f.name),
        )
        for f in fields(TopicSpec)
        if getattr(wanted, f.name) != getattr(actual, f.name)
    ]
