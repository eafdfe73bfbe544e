"""Registry settings."""

from pydantic import Field

from marketsense.common.settings import CommonSettings


class RegistrySettings(CommonSettings):
    """Settings of the registry service."""

    registry_max_bundle_mb: int = Field(default=512, ge=1)
    """Largest bundle part a push may upload, in MiB; larger uploads get 413."""

    registry_max_unpacked_mb: int = Field(default=2048, ge=1)
    """Largest total a bundle may unpack to, in MiB; guards against compression bombs."""
