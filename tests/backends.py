"""Settings that put a service on the real servers the test command started."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from marketsense.common.store.s3 import S3Store
from tests.conftest import infra

S3_KEY = "test"
"""Access key id and secret of the test S3 server (it accepts any)."""


def object_store_fields(url: str) -> dict[str, str]:
    """Settings fields naming an object store; for an `s3://` one, the test server's too."""
    fields = {"object_store_url": url}
    if url.startswith("s3://"):
        fields |= {
            "s3_endpoint_url": infra("MARKETSENSE_TEST_S3_ENDPOINT"),
            "s3_access_key_id": S3_KEY,
            "s3_secret_access_key": S3_KEY,
        }
    return fields


def real_servers(
    *, database_url: str, prefix: str, bucket: str = "marketsense-test"
) -> dict[str, str]:
    """Settings fields for PostgreSQL, Kafka and S3, with topics, groups and objects under
    prefixes no other test uses."""
    return {
        "database_url": database_url,
        "kafka_bootstrap_servers": infra("MARKETSENSE_TEST_KAFKA"),
        **object_store_fields(f"s3://{bucket}/{uuid.uuid4().hex[:10]}"),
        "topic_prefix": prefix,
        "consumer_group_prefix": prefix + "group",
    }


def as_environment(fields: Mapping[str, object]) -> dict[str, str]:
    """Settings fields as the `MARKETSENSE_*` variables a service process reads them from."""
    return {f"MARKETSENSE_{name.upper()}": str(value) for name, value in fields.items()}


def s3_store(url: str) -> S3Store:
    """A client (not started) of the test S3 server at `url`."""
    return S3Store(
        url,
        endpoint_url=infra("MARKETSENSE_TEST_S3_ENDPOINT"),
        access_key_id=S3_KEY,
        secret_access_key=S3_KEY,
    )
