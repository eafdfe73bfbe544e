"""Registry settings."""

from pydantic import Field

from marketsense.common.settings import CommonSettings
from marketsense.models.kinds import Variant


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

    registry_sentiment_variant: Variant = "int8"
    """Which sentiment graph the production gate measures: the one processing serves
    (`MARKETSENSE_SENTIMENT_QUANTIZED=true`, its default, serves int8). A bundle without an
    int8 graph is served, and gated, as fp32."""

    registry_min_heldout_macro_f1: float = Field(default=0.6, ge=0.0, le=1.0)
    """Macro-F1 on the registry's sentiment evaluation set that a model's first production
    version must reach (the shipped default model measures about 0.8 on the held-out texts)."""

    registry_min_holdout_auc: float = Field(default=0.5, ge=0.0, le=1.0)
    """AUC on the registry's predictor evaluation set that a model's first production version
    must reach: 0.5 is a coin toss, so a first version must at least not rank outcomes backwards."""
