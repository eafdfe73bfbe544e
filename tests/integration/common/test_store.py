"""With no keys in the settings, the S3 store signs with boto3's credential chain."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from marketsense.common.store.s3 import S3Store
from tests.conftest import INTEGRATION, infra

pytestmark = [INTEGRATION, pytest.mark.timeout(120)]


async def test_keys_from_a_shared_credentials_file_sign_object_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only a profile in a credentials file, which object_store's own chain does not read.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = from-file\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    store = S3Store(
        f"s3://marketsense-test/{uuid.uuid4().hex[:10]}",
        endpoint_url=infra("MARKETSENSE_TEST_S3_ENDPOINT"),
    )
    await store.start()
    try:
        ref = await store.put("signed/by-profile.bin", b"payload")
        assert await store.get(ref) == b"payload"
    finally:
        await store.close()
