"""Processing settings."""

from marketsense.common.settings import CommonSettings


class ProcessingSettings(CommonSettings):
    """Settings of the processing service."""
