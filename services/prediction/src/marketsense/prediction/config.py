"""Prediction settings."""

from pathlib import Path

from pydantic import Field

from marketsense.common.settings import CommonSettings


class PredictionSettings(CommonSettings):
    """Settings of the prediction service."""

    predictor_path: Path | None = None
    """Folder with `model.onnx` and `manifest.json`; unset: `<home>/models/baseline-predictor`."""

    signal_threshold: float = Field(default=0.05, ge=0, lt=0.5)
    """Distance from 0.5 that the up-probability must exceed to give an up or down signal."""

    def resolved_predictor_path(self) -> Path:
        """The predictor folder, falling back to the embedded default."""
        return self.predictor_path or self.home / "models" / "baseline-predictor"
