"""Registry settings."""

from marketsense.common.settings import CommonSettings


class RegistrySettings(CommonSettings):
    """Settings of the registry service."""
