"""Registry settings."""

from pydantic import Field

from marketsense.common.settings import CommonSettings


class RegistrySettings(CommonSettings):
    """Settings of the registry service."""

    registry_serving_stale_seconds: float = Field(default=90.0, gt=0)
    """Serving reports older than this are left out of `GET /v1/models/{name}/serving` and of
    promotion warnings: three polls of the services' default `MARKETSENSE_MODEL_POLL_SECONDS`
    (30 s), so one slow poll does not hide a replica."""

    registry_max_bundle_mb: int = Field(default=512, ge=1)
    """Largest bundle part a push may upload, in MiB; larger uploads get 413."""

    registry_max_unpacked_mb: int = Field(default=2048, ge=1)
    """Largest total a bundle may unpack to, in MiB; guards against compression bombs."""
