"""Prediction settings."""

from pathlib import Path

from pydantic import Field, field_validator

from marketsense.models.live import LiveModelSettings


class PredictionSettings(LiveModelSettings):
    """Settings of the prediction service."""

    predictor_model: str = "baseline-predictor"
    """Registered predictor whose production version the service serves."""

    prediction_shadow_alias: str = Field(default="challenger", max_length=64)
    """Alias of `predictor_model` whose version scores every run beside production (its rows
    stored, never served), for monitoring's champion-against-challenger comparison; empty
    disables shadow scoring."""

    predictor_path: Path | None = None
    """Folder with `model.onnx` and `manifest.json`, served only while the registry has no
    production version of `predictor_model`; unset: `<home>/models/baseline-predictor`."""

    signal_threshold: float = Field(default=0.05, ge=0, lt=0.5)
    """Distance from 0.5 that the up-probability must exceed to give an up or down signal."""

    latest_cache_seconds: float = Field(default=1.0, ge=0)
    """How long a symbol's latest prediction is answered from memory; 0 reads it every time."""

    predict_max_rows: int = Field(default=1000, ge=1, le=100_000)
    """Most feature rows one `POST /v1/predict` may carry."""

    @field_validator("prediction_shadow_alias")
    @classmethod
    def _shadow_is_not_production(cls, alias: str) -> str:
        """Production is served already; the shadow is another alias (or none)."""
        if alias == "production":
            raise ValueError("the shadow alias must not be production: the service serves it")
        return alias

    def resolved_predictor_path(self) -> Path:
        """The predictor folder, falling back to the embedded default."""
        return self.predictor_path or self.home / "models" / "baseline-predictor"
