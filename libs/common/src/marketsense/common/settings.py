"""Shared settings read from `MARKETSENSE_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketsense.common.events import PAYLOAD_TYPES

DEFAULT_HOME = Path(".marketsense")
LIBPQ_SCHEMES = ("postgresql://", "postgres://")
ASYNC_POSTGRES_SCHEME = "postgresql+asyncpg://"
DAY_MS = 24 * 60 * 60 * 1000


def event_topics() -> set[str]:
    """Every event topic and its dead-letter topic, without the deployment's prefix."""
    topics = {p.topic for p in PAYLOAD_TYPES.values()}
    return topics | {f"{t}.dlq" for t in topics}


TOPIC_NAMES: list[JsonValue] = [*sorted(event_topics())]
"""The names `kafka_topic_overrides` may use, for the chart's values schema."""


class KafkaTopicOverride(BaseModel):
    """One topic's settings where they differ from the `kafka_topic_*` ones; unset: those."""

    model_config = ConfigDict(extra="forbid")

    partitions: int | None = Field(default=None, ge=1)
    """Partitions of this topic."""
    replication_factor: int | None = Field(default=None, ge=1)
    """Copies of each partition."""
    min_insync_replicas: int | None = Field(default=None, ge=1)
    """Copies that must have a write before it is acknowledged."""
    retention_ms: int | None = Field(default=None, ge=-1)
    """How long records stay, in milliseconds; -1 keeps them forever."""


class CommonSettings(BaseSettings):
    """Settings every service reads; unset infrastructure means the embedded default."""

    model_config = SettingsConfigDict(env_prefix="MARKETSENSE_", extra="ignore")

    home: Path = DEFAULT_HOME
    """Folder for the embedded default's SQLite file, objects and models."""

    database_url: SecretStr | None = None
    """SQLAlchemy async URL (postgresql+asyncpg://...; a plain postgresql:// URI is read as
    asyncpg); unset means SQLite under `home`."""

    kafka_bootstrap_servers: str | None = None
    """Comma-separated Kafka brokers; unset means the in-process bus."""

    object_store_url: str | None = None
    """`s3://bucket/prefix` or `file:///path`; unset means a folder under `home`."""

    s3_endpoint_url: str | None = None
    """Endpoint of an S3-compatible server; unset means AWS's own."""

    s3_access_key_id: SecretStr | None = None
    """S3 access key id; unset means the default AWS credential chain."""

    s3_secret_access_key: SecretStr | None = None
    """S3 secret access key; unset means the default AWS credential chain."""

    s3_region: str = "us-east-1"
    """Region the S3 client signs requests for."""

    topic_prefix: str = ""
    """Prepended to every topic name, so several deployments or tests can share one broker."""

    # Event volumes are small (a few events per symbol per run), so partitions buy parallel
    # consumers, not throughput: they bound the replicas KEDA can usefully add, and raising
    # them later moves keys to other partitions, so a deployment sets its count up front.
    kafka_topic_partitions: int = Field(default=4, ge=1)
    """Partitions of every event topic and dead-letter topic the services create."""

    kafka_topic_replication_factor: int = Field(default=1, ge=1)
    """Copies of each partition; 1 suits a one-broker development Kafka, 3 a production one."""

    kafka_topic_min_insync_replicas: int = Field(default=1, ge=1)
    """Copies that must hold a write before the broker acknowledges it (the producer uses
    acks=all); at most the replication factor, 2 with 3 copies survives one broker's loss."""

    kafka_topic_retention_ms: int = Field(default=7 * DAY_MS, ge=-1)
    """How long event topics keep records, in milliseconds (the replay window); -1: forever."""

    kafka_dlq_retention_ms: int = Field(default=30 * DAY_MS, ge=-1)
    """How long `.dlq` topics keep records, in milliseconds; -1: forever. The dead letters
    table keeps every letter too; this bounds how long it can be replayed from Kafka."""

    kafka_topic_overrides: dict[str, KafkaTopicOverride] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": {"enum": TOPIC_NAMES}}
    )
    """Per topic (name without the prefix, e.g. `raw.ready` or `raw.ready.dlq`), settings
    that differ from the `kafka_topic_*` ones, as JSON: `{"raw.ready": {"partitions": 12}}`."""

    consumer_group_prefix: str = "marketsense"
    """Consumer groups are named `<prefix>.<service>`."""

    handler_max_attempts: int = Field(default=3, ge=1)
    """Attempts for a handler that raises a retryable error before its event is dead-lettered."""

    handler_retry_base_seconds: float = Field(default=0.2, ge=0)
    """First back-off delay between handler attempts; it doubles each attempt, with jitter."""

    api_key_cache_seconds: float = Field(default=30.0, ge=0)
    """How long a service remembers an API key lookup; a revoked key works at most this long."""

    http_max_body_kib: int = Field(default=1024, ge=1)
    """Largest request body a route reads, in KiB, unless the route states its own limit
    (`POST /v1/predict` takes `predict_max_rows` rows, a model push its bundle); over it: 413."""

    http_body_timeout_seconds: float = Field(default=30.0, gt=0)
    """Longest time a request body may take to arrive (for a streamed upload: the longest wait
    for its next part); past it the server answers 408 and closes the connection."""

    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    """Longest time a request's line and headers may take to arrive, from the connection's
    opening or a request's first byte; past it the server closes the connection."""

    http_keep_alive_seconds: int = Field(default=5, ge=1)
    """How long an idle keep-alive connection stays open between requests."""

    log_level: str = "INFO"
    """Root log level."""

    log_json: bool = True
    """Log one JSON object per line (for log shippers); false gives plain text."""

    @field_validator("kafka_topic_overrides")
    @classmethod
    def _known_topics(
        cls, overrides: dict[str, KafkaTopicOverride]
    ) -> dict[str, KafkaTopicOverride]:
        unknown = sorted(set(overrides) - event_topics())
        if unknown:
            known = ", ".join(sorted(event_topics()))
            raise ValueError(f"no event topic named {', '.join(unknown)}; topics are: {known}")
        return overrides

    @model_validator(mode="after")
    def _writable_topics(self) -> CommonSettings:
        # More in-sync copies required than exist would refuse every acks=all write.
        for topic in ["", *self.kafka_topic_overrides]:
            override = self.kafka_topic_overrides.get(topic, KafkaTopicOverride())
            replicas = override.replication_factor or self.kafka_topic_replication_factor
            insync = override.min_insync_replicas or self.kafka_topic_min_insync_replicas
            if insync > replicas:
                where = f" (with kafka_topic_overrides for {topic})" if topic else ""
                raise ValueError(
                    f"kafka_topic_min_insync_replicas {insync} is more than "
                    f"kafka_topic_replication_factor {replicas}{where}: no write could succeed"
                )
        return self

    def resolved_database_url(self) -> str:
        """The database URL, falling back to the embedded SQLite file."""
        if self.database_url is not None:
            url = self.database_url.get_secret_value()
            # Operators such as CloudNativePG hand out libpq URIs; SQLAlchemy needs the driver.
            for scheme in LIBPQ_SCHEMES:
                if url.startswith(scheme):
                    return ASYNC_POSTGRES_SCHEME + url.removeprefix(scheme)
            return url
        return f"sqlite+aiosqlite:///{(self.home / 'marketsense.db').resolve()}"

    def resolved_object_store_url(self) -> str:
        """The object store URL, falling back to a folder under `home`."""
        if self.object_store_url:
            return self.object_store_url
        return (self.home / "objects").resolve().as_uri()

    def topic(self, name: str) -> str:
        """The full name of a topic, with this deployment's prefix."""
        return f"{self.topic_prefix}{name}"
