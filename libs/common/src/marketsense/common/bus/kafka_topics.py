"""Create missing Kafka topics as the settings describe them; check existing ones against them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from marketsense.common.bus.topics import (
    TOPIC_CONFIGS,
    Mismatch,
    TopicPolicy,
    TopicSpec,
    mismatches,
)
from marketsense.common.metrics import KAFKA_TOPIC_MISMATCHES

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
"""Kafka's error code when another process created the topic first."""


class TopicCreationError(RuntimeError):
    """The broker refused to create a topic as configured (too many replicas for its brokers...)."""


async def ensure_topics(
    *, bootstrap_servers: str, policy: TopicPolicy, topics: Mapping[str, str]
) -> list[Mismatch]:
    """Create the missing ones of `topics` (full name -> name without the prefix) as `policy`
    says; warn about, count and return how the existing ones differ from it."""
    if not topics:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics()) & set(topics)
        missing = sorted(set(topics) - existing)
        # A topic another replica created a moment ago exists all the same: check it too.
        existing |= await _create(admin, {t: policy.spec(topics[t]) for t in missing})
        actual = await _describe(admin, sorted(existing))
    finally:
        await admin.close()
    found: list[Mismatch] = []
    for topic, spec in actual.items():
        differences = mismatches(policy, topic=topic, name=topics[topic], actual=spec)
        differing = {m.field for m in differences}
        for f in fields(TopicSpec):
            KAFKA_TOPIC_MISMATCHES.labels(topic=topic, setting=f.name).set(f.name in differing)
        for mismatch in differences:
            log.warning(mismatch.message())
        found += differences
    return found


async def _create(admin: AIOKafkaAdminClient, specs: dict[str, TopicSpec]) -> set[str]:
    """Create topics; returns those that turned out to exist already."""
    if not specs:
        return set()
    response = await admin.create_topics(
        [
            NewTopic(
                topic,
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                topic_configs=spec.configs(),
            )
            for topic, spec in specs.items()
        ]
    )
    raced = set()
    for topic, code, message in _topic_errors(response):
        if code == TOPIC_ALREADY_EXISTS:
            raced.add(topic)
        elif code:
            raise TopicCreationError(
                f"Kafka refused to create topic {topic} as {specs[topic]} (error {code}: "
                f"{message}); check the kafka_topic_* settings against the cluster"
            )
    for topic in sorted(set(specs) - raced):
        log.info("created Kafka topic %s as %s", topic, specs[topic])
    return raced


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    """(topic, error code, message) of a CreateTopics response of any version."""
    return [(str(e[0]), int(e[1]), e[2] if len(e) > 2 else None) for e in response.topic_errors]


async def _describe(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, TopicSpec]:
    """What the broker holds for each topic; a topic it will not describe is left out, logged."""
    if not topics:
        return {}
    shapes: dict[str, tuple[int, int]] = {}
    for described in await admin.describe_topics(topics):
        partitions = described["partitions"]
        if described["error_code"] or not partitions:
            log.warning(
                "could not describe Kafka topic %s (error %d)",
                described["topic"],
                described["error_code"],
            )
            continue
        # The weakest partition is what a write may meet.
        copies = min(len(p["replicas"]) for p in partitions)
        shapes[described["topic"]] = (len(partitions), copies)
    configs = await _configs(admin, sorted(shapes))
    return {
        topic: TopicSpec(
            partitions=count,
            replication_factor=copies,
            min_insync_replicas=int(configs[topic]["min.insync.replicas"]),
            retention_ms=int(configs[topic]["retention.ms"]),
        )
        for topic, (count, copies) in shapes.items()
        if topic in configs
    }


async def _configs(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, dict[str, str]]:
    """The checked configs of each topic, as the broker applies them (its defaults included)."""
    if not topics:
        return {}
    wanted = dict.fromkeys(TOPIC_CONFIGS.values())
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, t, dict(wanted)) for t in topics]
    )
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            name = resource["resource_name"]
            if resource["error_code"]:
                # Without DescribeConfigs rights the check cannot run; the topic still works.
                log.warning(
                    "could not read the configs of Kafka topic %s (error %d): %s",
                    name,
                    resource["error_code"],
                    resource["error_message"],
                )
                continue
            entries = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
            if set(wanted) <= set(entries):
                found[name] = entries
    return found
