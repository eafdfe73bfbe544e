"""Processing settings."""

from pathlib import Path

from pydantic import Field

from marketsense.models.live import LiveModelSettings


class ProcessingSettings(LiveModelSettings):
    """Settings of the processing service."""

    sentiment_model: str = "minilm-sentiment"
    """Registered sentiment model whose production version the service serves."""

    sentiment_model_path: Path | None = None
    """Sentiment artifact folder (model.onnx, tokenizer.json, manifest.json), served only while
    the registry has no production version of `sentiment_model`; unset means
    `<home>/models/sentiment`."""

    sentiment_quantized: bool = True
    """Serve the int8 variant when the artifact has one (faster, accuracy within a point)."""

    sentiment_batch_size: int = Field(default=32, ge=1, le=1024)
    """Texts scored per onnxruntime call."""

    sentiment_threads: int = Field(default=1, ge=1)
    """onnxruntime intra-op threads; scale with replicas rather than threads."""

    def resolved_sentiment_model_path(self) -> Path:
        """The sentiment model folder, falling back to the embedded default."""
        return self.sentiment_model_path or self.home / "models" / "sentiment"
