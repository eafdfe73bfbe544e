"""Retention settings: how long each prefix and table is kept, and how a pass deletes."""

from __future__ import annotations

from pydantic import Field

from marketsense.common.settings import CommonSettings

Days = int | None
"""Days a thing is kept; None keeps it forever."""


class RetentionSettings(CommonSettings):
    """Settings of a retention pass (`marketsense retention apply`, the chart's CronJob)."""

    retention_raw_days: Days = Field(default=90, ge=1)
    """Days objects under `raw/` and their `raw_objects` rows are kept after they were stored;
    unset keeps them forever."""

    retention_features_days: Days = Field(default=730, ge=1)
    """Days objects under `features/` and their `features` rows are kept after they were stored,
    beyond which only a registered model version's training or evaluation window keeps them."""

    retention_predictions_days: Days = Field(default=None, ge=1)
    """Days `predictions` rows are kept; unset (the default) keeps them forever. A prediction
    whose outcome is still kept stays as well."""

    retention_outcomes_days: Days = Field(default=None, ge=1)
    """Days `outcomes` rows are kept; unset (the default) keeps them forever."""

    retention_runs_days: Days = Field(default=730, ge=1)
    """Days a finished run's `runs` and `tasks` rows are kept after it finished; a run is deleted
    only once none of its objects or predictions remain."""

    retention_dead_letters_days: Days = Field(default=30, ge=1)
    """Days a dead letter is kept once it was replayed, or once its run finished for good."""

    retention_audit_days: Days = Field(default=None, ge=1)
    """Days the audit tables (operator actions, registry audit, alias changes, alerts, retention
    passes) are kept; unset (the default) keeps them forever."""

    retention_retry_days: int = Field(default=30, ge=0)
    """Days after a PARTIAL or FAILED run finished during which an operator may still retry its
    failed tasks: retention keeps all of such a run meanwhile."""

    retention_batch_size: int = Field(default=1000, ge=1, le=1000)
    """Objects deleted per batch: one S3 DeleteObjects request, one database transaction."""
