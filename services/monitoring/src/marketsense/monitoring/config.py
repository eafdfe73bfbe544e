"""Monitoring settings."""

from marketsense.common.settings import CommonSettings


class MonitoringSettings(CommonSettings):
    """Settings of the monitoring service."""
