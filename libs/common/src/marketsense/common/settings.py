"""Shared settings read from `MARKETSENSE_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path(".marketsense")
LIBPQ_SCHEMES = ("postgresql://", "postgres://")
ASYNC_POSTGRES_SCHEME = "postgresql+asyncpg://"


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
