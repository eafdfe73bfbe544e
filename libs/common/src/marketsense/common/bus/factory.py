"""Build the bus the settings ask for."""

from marketsense.common.bus.base import EventBus
from marketsense.common.bus.memory import InProcessBus
from marketsense.common.settings import CommonSettings


def bus_from_settings(settings: CommonSettings, *, client_id: str = "marketsense") -> EventBus:
    """Kafka when brokers are configured, else the in-process bus."""
    if settings.kafka_bootstrap_servers:
        from marketsense.common.bus.kafka import KafkaBus
        from marketsense.common.bus.topics import TopicPolicy

        return KafkaBus(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topic_prefix=settings.topic_prefix,
            max_attempts=settings.handler_max_attempts,
            retry_base=settings.handler_retry_base_seconds,
            topic_policy=TopicPolicy.from_settings(settings),
            client_id=client_id,
        )
    return InProcessBus(
        topic_prefix=settings.topic_prefix,
        max_attempts=settings.handler_max_attempts,
        retry_base=settings.handler_retry_base_seconds,
    )
