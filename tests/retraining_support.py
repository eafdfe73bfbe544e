"""What the retraining suites share: runs stored as the pipeline stores them (bars by ingestion,
each day's features as processing computes them), and, while modelkit's table of trainers is not
installed, a stand-in logistic trainer under its names."""

from __future__ import annotations

import datetime as dt
import functools
import importlib.util
import sys
import threading
import time
import types
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from skl2onnx import to_onnx
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sqlalchemy import select

from marketsense.common.db.models import FeatureSet, RawObject, Run, Task
from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA, MIN_BARS
from marketsense.common.parquet import from_parquet_bytes, to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.ingestion.service import ingest_symbol
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.models.feature_reference import write_feature_reference
from marketsense.models.predictor import PredictorManifest, write_predictor
from marketsense.processing.service import feature_rows

LOOKBACK = MIN_BARS
"""Bars before a run's first day, enough for every feature's warm-up."""


async def stored_run(
    runtime: Runtime,
    market: SimulatedMarket,
    *,
    as_of: dt.date,
    symbols: list[str],
    start: dt.date | None = None,
) -> str:
    """A finished run (a backfill from `start`, else daily): ingestion stored each symbol's
    bars, and each symbol's features for the run's days are stored as processing stores them."""
    run_id = str(uuid.uuid4())
    async with runtime.transaction() as session:
        kind = "daily" if start is None else "backfill"
        session.add(
            Run(
                id=run_id,
                as_of=as_of,
                start=start,
                state=RunState.RUNNING,
                symbols=len(symbols),
                kind=kind,
            )
        )
        await session.flush()
        session.add_all(
            Task(run_id=run_id, symbol=s, stage=Stage.INGEST, state=TaskState.PENDING)
            for s in symbols
        )
    for symbol in symbols:
        await ingest_symbol(
            runtime=runtime,
            source=market,
            run_id=run_id,
            symbol=symbol,
            as_of=as_of,
            lookback_days=LOOKBACK,
            start=start,
        )
    async with runtime.transaction() as session:
        bars = await session.scalars(
            select(RawObject).where(RawObject.run_id == run_id, RawObject.kind == "bars")
        )
        for raw in bars:
            frame = from_parquet_bytes(await runtime.store.get(raw.ref()))
            kept = feature_rows(frame, start=start or as_of, as_of=as_of, symbol=raw.symbol)
            ref = await runtime.store.put(
                f"features/{as_of}/{run_id}/{raw.symbol}.parquet", to_parquet_bytes(kept)
            )
            stored = FeatureSet(
                run_id=run_id, symbol=raw.symbol, as_of=as_of, feature_schema=FEATURE_SCHEMA
            )
            stored.point_at(ref)
            session.add(stored)
        run = await session.get(Run, run_id)
        assert run is not None
        run.state = RunState.SUCCESS
    return run_id


class StandInInsufficientData(ValueError):
    """The stand-in's refusal of a table too small or one-class."""


def stand_in_logistic(
    table: pd.DataFrame,
    directory: Path,
    *,
    name: str,
    version: str = "1",
    source: str,
    training: Mapping[str, str] | None = None,
) -> PredictorManifest:
    """A logistic regression on the table's features, exported to ONNX, as modelkit's
    `train_logistic` does (for the suites, while modelkit's trainers are not installed)."""
    if len(table) < 300 or table["label"].nunique() < 2:
        raise StandInInsufficientData(f"{len(table)} rows; at least 300 of both classes needed")
    x = table[list(FEATURE_COLUMNS)].to_numpy(np.float32)
    model = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
        LogisticRegression(max_iter=500),
    )
    model.fit(x, table["label"].astype(int))
    graph = to_onnx(model, x[:1], options={"zipmap": False}, target_opset=17)
    manifest = PredictorManifest(
        name=name,
        version=version,
        feature_schema=FEATURE_SCHEMA,
        features=list(FEATURE_COLUMNS),
        input_name=graph.graph.input[0].name,
        probability_output="probabilities",
        metrics={"train_rows": float(len(table))},
        evaluation_window=f"{source} {min(table['date'])}..{max(table['date'])}",
        training={"source": source, **(training or {})},
    )
    directory.mkdir(parents=True, exist_ok=True)
    write_feature_reference(directory, table)
    return write_predictor(directory, onnx_bytes=graph.SerializeToString(), manifest=manifest)


def install_stand_in_trainers(*, seconds: float = 0.0) -> None:
    """Put the stand-in under modelkit's trainer names in this process, unless modelkit has
    its own table of trainers; it takes at least `seconds`, as a real trainer takes a while."""
    name = "marketsense.modelkit.trainers"
    if name in sys.modules or importlib.util.find_spec(name) is not None:
        return
    trainers = types.ModuleType(name)

    def slow(table: pd.DataFrame, directory: Path, **options: Any) -> PredictorManifest:
        finished = time.monotonic() + seconds
        manifest = stand_in_logistic(table, directory, **options)
        while time.monotonic() < finished:  # a worker thread, never the event loop
            threading.Event().wait(0.05)
        return manifest

    trainer = functools.update_wrapper(slow, stand_in_logistic) if seconds else stand_in_logistic
    trainers.TRAINERS = {"logistic": trainer, "torch-mlp": trainer}  # type: ignore[attr-defined]
    errors = types.ModuleType("marketsense.modelkit.training_errors")
    errors.InsufficientTrainingData = StandInInsufficientData  # type: ignore[attr-defined]
    sys.modules[trainers.__name__] = trainers
    sys.modules[errors.__name__] = errors


def serve_with_stand_in(seconds: float) -> None:
    """Serve the retraining worker in this process with the stand-in trainer (for processes
    started by the end-to-end tests)."""
    from marketsense.common.serve import serve

    install_stand_in_trainers(seconds=seconds)
    serve("retraining")
