"""Shadow scoring: the challenger's opinion on the same feature rows the served predictor
scored, stored beside production's rows and never served."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from prometheus_client import Counter

from marketsense.models.predictor import OnnxPredictor, PredictorManifest
from marketsense.models.slot import ModelSlot
from marketsense.prediction.store import PredictionRow

log = logging.getLogger(__name__)

SHADOW_PREDICTIONS = Counter(
    "marketsense_shadow_predictions_total",
    "Predictions stored for a shadow (challenger) version beside the served version's.",
    ["service", "model", "version"],
)


def shadow_rows(
    shadow: ModelSlot[OnnxPredictor] | None,
    served: PredictorManifest,
    features: pd.DataFrame,
    *,
    run_id: str,
    symbol: str,
    days: Sequence[dt.date],
    threshold: float,
) -> list[PredictionRow]:
    """The shadow's rows for the feature rows the served predictor scored, signals from the
    same threshold; none while no shadow is loaded, it is the served version, or it reads
    other features. A shadow that fails to score is logged and skipped: production's rows
    never wait on it."""
    predictor = shadow.current if shadow is not None else None
    if predictor is None:
        return []
    manifest = predictor.manifest
    if manifest.name != served.name or manifest.version == served.version:
        return []
    missing = [c for c in manifest.features if c not in features.columns]
    if manifest.feature_schema != served.feature_schema or missing:
        log.warning(
            "cannot shadow-score %s with %s version %s: it reads %s%s",
            symbol,
            manifest.name,
            manifest.version,
            manifest.feature_schema,
            f" and lacks {missing}" if missing else "",
        )
        return []
    try:
        probabilities = predictor.predict_up(features[manifest.features].to_numpy(np.float32))
    except Exception:  # whatever onnxruntime raises; the served version's rows go on
        log.warning(
            "shadow scoring of %s with %s version %s failed",
            symbol,
            manifest.name,
            manifest.version,
            exc_info=True,
        )
        return []
    return PredictionRow.each_day(
        manifest, probabilities, run_id=run_id, symbol=symbol, days=days, threshold=threshold
    )


def count_shadow(rows: Sequence[PredictionRow], *, service: str) -> None:
    """Count stored shadow rows, once their transaction committed."""
    if rows:
        SHADOW_PREDICTIONS.labels(service, rows[0].model_name, rows[0].model_version).inc(len(rows))
