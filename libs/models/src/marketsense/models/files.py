"""The files a model bundle holds, by name, and which of them each kind needs."""

from __future__ import annotations

from marketsense.models.kinds import ModelKind

MANIFEST_FILE = "manifest.json"
"""What the artifact is and promises; the registry stores it apart from the bundle's other files."""
MODEL_FILE = "model.onnx"
"""The fp32 ONNX graph."""
QUANTIZED_MODEL_FILE = "model.int8.onnx"
"""A sentiment model's dynamically quantised int8 graph, served by default when present."""
TOKENIZER_FILE = "tokenizer.json"
"""A sentiment model's tokenizer, in the Hugging Face `tokenizers` format."""

REFERENCE_FILE = "reference.json"
"""Optional in a sentiment bundle: probe texts and the probabilities the exporting framework gave
them, which each served graph must reproduce (`{"texts": [...], "probabilities": [[...]]}`)."""

FEATURE_REFERENCE_FILE = "feature_reference.parquet"
"""Optional in a predictor bundle: a seeded sample of the training feature rows, the reference
monitoring measures the drift of served features against (marketsense.models.feature_reference)."""

REQUIRED_FILES: dict[ModelKind, tuple[str, ...]] = {
    "predictor": (MODEL_FILE,),
    "sentiment": (MODEL_FILE, TOKENIZER_FILE),
}
"""Files besides the manifest that a bundle of each kind must hold."""

OPTIONAL_FILES: dict[ModelKind, tuple[str, ...]] = {
    "predictor": (FEATURE_REFERENCE_FILE,),
    "sentiment": (QUANTIZED_MODEL_FILE, REFERENCE_FILE),
}
"""Files a bundle of each kind may hold."""
