"""The registry's checks of a pushed version: load it the way the serving services will."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import onnxruntime as ort
from pydantic import ValidationError

from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA, SENTIMENT_SCHEMAS
from marketsense.models.bundles import BundleError, unpack_bundle
from marketsense.models.feature_reference import InvalidReference, check_feature_reference
from marketsense.models.files import (
    FEATURE_REFERENCE_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    OPTIONAL_FILES,
    QUANTIZED_MODEL_FILE,
    REFERENCE_FILE,
    REQUIRED_FILES,
    TOKENIZER_FILE,
)
from marketsense.models.integrity import FileMismatch, content_sha256, verify_files
from marketsense.models.kinds import ModelKind
from marketsense.models.parity import (
    ParityError,
    Reference,
    check_longest_input,
    check_parity,
    read_reference,
)
from marketsense.models.predictor import OnnxPredictor, PredictorManifest, warm_up_predictor
from marketsense.models.probes import (
    PROBE_LANGUAGE,
    LabelOrderError,
    check_label_order,
    probe_texts,
    read_probe,
)
from marketsense.models.sentiment import SentimentManifest, SentimentModel, load_tokenizer
from marketsense.models.text_screen import CANDIDATE_LANGUAGES

Manifest = PredictorManifest | SentimentManifest
"""A manifest of either kind."""
KNOWN_FEATURE_SCHEMAS = (FEATURE_SCHEMA,)
"""Feature schemas processing produces; a predictor must read one of them."""
GRAPH_THREADS = 2
"""onnxruntime threads of each graph the registry loads to check and then score a push."""
_PROBE_TEXTS = ["Shares jump after record quarterly results.", "The company warns of weak demand."]
_PLACEHOLDER_VERSION = "0"


class InvalidUpload(ValueError):
    """A pushed version that the serving services could not load or use (HTTP 422)."""


@dataclass(frozen=True)
class CheckedBundle:
    """A version that passed every check, unpacked in a folder with its manifest."""

    directory: Path
    manifest: Manifest
    files: list[str]
    """Bundle files, sorted; `manifest.json` is not among them."""
    content_sha256: str
    """Identity of the push: its manifest (without name and version) and its files' hashes."""
    checks: dict[str, Any]
    """What the checks measured (parity per variant, label probe, longest input), as JSON."""
    graphs: dict[str, SentimentModel] = field(default_factory=dict, compare=False, repr=False)
    """A sentiment version's graphs as the checks loaded them, so scoring it loads none again."""


def check_upload(
    *,
    kind: ModelKind,
    model_name: str,
    manifest_bytes: bytes,
    bundle: IO[bytes],
    directory: Path,
    max_unpacked_bytes: int,
) -> CheckedBundle:
    """Unpack a push into `directory`, verify its files and load it as its service would;
    raise InvalidUpload saying what to fix."""
    manifest = parse_manifest(kind=kind, model_name=model_name, data=manifest_bytes)
    required, optional = REQUIRED_FILES[kind], OPTIONAL_FILES[kind]
    try:
        files = unpack_bundle(
            bundle,
            directory,
            allowed={*required, *optional, MANIFEST_FILE},
            max_bytes=max_unpacked_bytes,
        )
    except BundleError as error:
        raise InvalidUpload(str(error)) from error
    if MANIFEST_FILE in files:
        files.remove(MANIFEST_FILE)
        check_bundled_manifest(directory / MANIFEST_FILE, manifest_bytes)
    missing = [name for name in required if name not in files]
    if missing:
        raise InvalidUpload(f"{kind} bundle has no {', '.join(missing)}")
    try:
        verify_files(directory, files, manifest.files)
    except FileMismatch as error:
        raise InvalidUpload(str(error)) from error
    (directory / MANIFEST_FILE).write_text(manifest_json(manifest), encoding="utf-8")
    checks: dict[str, Any] = {"files": len(files)}
    graphs: dict[str, SentimentModel] = {}
    if isinstance(manifest, PredictorManifest):
        check_predictor(directory, manifest)
        checks |= check_reference_file(directory)
    else:
        measured, graphs = checked_sentiment(directory, manifest)
        checks |= measured
    return CheckedBundle(
        directory=directory,
        manifest=manifest,
        files=files,
        content_sha256=content_sha256(manifest.model_dump(mode="json"), manifest.files),
        checks=checks,
        graphs=graphs,
    )


def check_bundled_manifest(path: Path, form_part: bytes) -> None:
    """A `manifest.json` inside the bundle must be the manifest form part, as parsed JSON."""
    try:
        bundled: Any = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidUpload(
            f"the bundle's own {MANIFEST_FILE} is not JSON ({error}); send the same manifest "
            "as the form part or leave it out of the bundle"
        ) from error
    sent = json.loads(form_part)
    if bundled == sent:
        return
    if isinstance(bundled, dict) and isinstance(sent, dict):
        differing = sorted(k for k in {*bundled, *sent} if bundled.get(k) != sent.get(k))
        which = f" (fields {differing} differ)"
    else:
        which = ""
    raise InvalidUpload(
        f"the bundle's own {MANIFEST_FILE} differs from the manifest form part{which}; "
        "send the same manifest in both or leave it out of the bundle"
    )


def parse_manifest(*, kind: ModelKind, model_name: str, data: bytes) -> Manifest:
    """The manifest part as its kind's model, named after the registered model."""
    try:
        raw: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidUpload(f"manifest is not JSON: {error}") from error
    if not isinstance(raw, dict):
        raise InvalidUpload("manifest must be a JSON object")
    declared = raw.get("kind", kind)
    if declared != kind:
        raise InvalidUpload(
            f"manifest kind {declared!r} does not match model {model_name!r}, "
            f"which is registered as {kind!r}"
        )
    schema: type[Manifest] = PredictorManifest if kind == "predictor" else SentimentManifest
    _refuse_unknown_fields(raw, schema)
    # The registry names and numbers versions; whatever the pusher wrote there is replaced.
    raw |= {"name": model_name, "version": _PLACEHOLDER_VERSION}
    try:
        return schema.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'manifest'}: {e['msg']}"
            for e in error.errors()
        )
        raise InvalidUpload(f"manifest is invalid: {problems}") from error


def _refuse_unknown_fields(raw: dict[str, Any], schema: type[Manifest]) -> None:
    """Name the fields a manifest of this kind does not have, with the known field they resemble."""
    known = list(schema.model_fields)
    unknown = sorted(set(raw) - set(known))
    if not unknown:
        return
    hints = [
        f"{name!r} -> {close[0]!r}"
        for name in unknown
        if (close := difflib.get_close_matches(name, known, n=1))
    ]
    hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
    raise InvalidUpload(
        f"manifest has unknown fields {unknown}{hint}; a {schema.model_fields['kind'].default} "
        f"manifest has only {sorted(known)}"
    )


def manifest_json(manifest: Manifest) -> str:
    """The stored form of a manifest."""
    return json.dumps(manifest.model_dump(mode="json"), indent=2)


def check_predictor(directory: Path, manifest: PredictorManifest) -> None:
    """Check a predictor's schema and features, then load it and score one row of zeros."""
    if manifest.feature_schema not in KNOWN_FEATURE_SCHEMAS:
        raise InvalidUpload(
            f"feature schema {manifest.feature_schema!r} is not one processing produces "
            f"(known: {', '.join(KNOWN_FEATURE_SCHEMAS)})"
        )
    features = manifest.features
    if not features:
        raise InvalidUpload("manifest lists no features")
    repeated = sorted({f for f in features if features.count(f) > 1})
    if repeated:
        raise InvalidUpload(f"manifest lists the features {repeated} more than once")
    unknown = [f for f in features if f not in FEATURE_COLUMNS]
    if unknown:
        raise InvalidUpload(
            f"features {unknown} are not columns of feature schema {manifest.feature_schema!r}"
        )
    session = _load_graph(directory / MODEL_FILE)
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    if manifest.input_name not in inputs:
        raise InvalidUpload(
            f"manifest input {manifest.input_name!r} is not a graph input "
            f"(graph has {sorted(inputs)})"
        )
    if manifest.probability_output not in outputs:
        raise InvalidUpload(
            f"manifest output {manifest.probability_output!r} is not a graph output "
            f"(graph has {sorted(outputs)})"
        )
    graph_input = inputs[manifest.input_name]
    if graph_input.type != "tensor(float)":
        raise InvalidUpload(
            f"graph input {manifest.input_name!r} is {graph_input.type}, not float32 "
            "(tensor(float))"
        )
    width = graph_input.shape[-1] if graph_input.shape else None
    if isinstance(width, int) and width != len(features):
        raise InvalidUpload(
            f"graph input {manifest.input_name!r} takes {width} features but the manifest "
            f"lists {len(features)}"
        )
    row = np.zeros((1, len(features)), dtype=np.float32)
    try:
        (probabilities,) = session.run([manifest.probability_output], {manifest.input_name: row})
    except Exception as error:  # onnxruntime's errors share no base class beyond Exception
        raise InvalidUpload(f"{MODEL_FILE} fails on one row of zeros: {error}") from error
    result = np.asarray(probabilities)
    if result.shape != (1, 2):
        raise InvalidUpload(
            f"output {manifest.probability_output!r} has shape {list(result.shape)} for one row; "
            "expected [1, 2] class probabilities"
        )
    if not (np.all(np.isfinite(result)) and np.all((result >= 0) & (result <= 1))) or not (
        abs(float(result.sum()) - 1.0) < 1e-3
    ):
        raise InvalidUpload(
            f"output {manifest.probability_output!r} is not probabilities "
            f"(one row of zeros gives {result.tolist()})"
        )
    try:
        warm_up_predictor(OnnxPredictor(directory))
    except Exception as error:  # whatever stops the service from loading it stops the push
        raise InvalidUpload(f"the prediction service cannot load the version: {error}") from error


def check_reference_file(directory: Path) -> dict[str, Any]:
    """Check a predictor's feature reference if it has one; return its rows, for the record."""
    path = directory / FEATURE_REFERENCE_FILE
    if not path.is_file():
        return {}
    try:
        return {"feature_reference_rows": check_feature_reference(path)}
    except InvalidReference as error:
        raise InvalidUpload(str(error)) from error


def check_sentiment(directory: Path, manifest: SentimentManifest) -> dict[str, Any]:
    """Check a sentiment model's tokenizer and every graph it may serve: each loads, scores the
    probe texts and a text of `max_length` tokens, matches the reference, and its scores fit the
    declared label order. Returns what was measured, for the version's record."""
    return checked_sentiment(directory, manifest)[0]


def checked_sentiment(
    directory: Path, manifest: SentimentManifest
) -> tuple[dict[str, Any], dict[str, SentimentModel]]:
    """`check_sentiment`'s record and the graphs it loaded, by variant: loading a graph takes
    a second of CPU, which scoring the push on the evaluation set need not spend again."""
    if manifest.feeds_feature_schema not in SENTIMENT_SCHEMAS:
        raise InvalidUpload(
            f"feature schema {manifest.feeds_feature_schema!r} is not one processing produces "
            f"(known: {', '.join(SENTIMENT_SCHEMAS)})"
        )
    if manifest.language not in CANDIDATE_LANGUAGES:
        raise InvalidUpload(
            f"language {manifest.language!r} is not one texts can be screened for "
            f"(one of {', '.join(CANDIDATE_LANGUAGES)})"
        )
    try:
        load_tokenizer(directory / TOKENIZER_FILE, max_length=manifest.max_length)
    except Exception as error:  # the tokenizers library raises plain Exception on bad JSON
        raise InvalidUpload(f"{TOKENIZER_FILE} does not load: {error}") from error
    models: dict[str, SentimentModel] = {
        variant: _scored_graph(directory, variant, manifest) for variant in _variants(directory)
    }
    tokens = {}
    for variant, model in models.items():
        try:
            tokens[variant] = check_longest_input(model)
        except ValueError as error:
            raise InvalidUpload(str(error)) from error
    reference = _reference(directory, manifest)
    probe = [text for texts in probe_texts(manifest.labels).values() for text in texts]
    try:
        parity = check_parity(models, reference, probe)
    except ParityError as error:
        raise InvalidUpload(str(error)) from error
    record = {
        "variants": list(models),
        "max_length": {"declared": manifest.max_length, "tokens_run": tokens},
        "parity": parity,
        "labels": _check_labels(models["fp32"], manifest),
    }
    return record, models


def _variants(directory: Path) -> list[str]:
    """The variants a bundle holds: fp32 always, int8 when it has the quantised graph."""
    return ["fp32"] + (["int8"] if (directory / QUANTIZED_MODEL_FILE).is_file() else [])


def _scored_graph(directory: Path, variant: str, manifest: SentimentManifest) -> SentimentModel:
    """Load one graph and score two short texts with it, or InvalidUpload saying why not."""
    quantized = variant == "int8"
    name = QUANTIZED_MODEL_FILE if quantized else MODEL_FILE
    try:
        model = SentimentModel(directory, quantized=quantized, threads=GRAPH_THREADS)
    except ValueError as error:
        raise InvalidUpload(f"{name} does not match the manifest: {error}") from error
    except Exception as error:  # onnxruntime's errors share no base class beyond Exception
        raise InvalidUpload(f"{name} does not load in onnxruntime: {error}") from error
    try:
        scores = model.probabilities(_PROBE_TEXTS)
    except Exception as error:  # any failure here would fail every scoring call too
        raise InvalidUpload(f"{name} fails to score two short texts: {error}") from error
    expected = (len(_PROBE_TEXTS), len(manifest.labels))
    if scores.shape != expected or not np.all(np.isfinite(scores)):
        raise InvalidUpload(
            f"{name} gives scores of shape {list(scores.shape)} for two texts; "
            f"expected {list(expected)} finite values"
        )
    return model


def _reference(directory: Path, manifest: SentimentManifest) -> Reference | None:
    """The bundle's `reference.json`, if it has one, or InvalidUpload saying what is wrong."""
    path = directory / REFERENCE_FILE
    if not path.is_file():
        return None
    try:
        return read_reference(path, labels=len(manifest.labels))
    except ValueError as error:
        raise InvalidUpload(str(error)) from error


def _check_labels(model: SentimentModel, manifest: SentimentManifest) -> dict[str, Any]:
    """Score the probe texts of each declared label and refuse an order they contradict."""
    if manifest.language != PROBE_LANGUAGE:
        return {
            "skipped": f"language {manifest.language!r}: the label probe texts are English "
            f"({PROBE_LANGUAGE!r})"
        }
    texts = probe_texts(manifest.labels)
    result = read_probe(
        manifest.labels, {label: model.probabilities(list(t)) for label, t in texts.items()}
    )
    try:
        check_label_order(result)
    except LabelOrderError as error:
        raise InvalidUpload(str(error)) from error
    return result.as_record()


def _load_graph(path: Path) -> ort.InferenceSession:
    """An onnxruntime session on a graph file, or InvalidUpload saying why it does not load."""
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's errors share no base class beyond Exception
        raise InvalidUpload(f"{path.name} does not load in onnxruntime: {error}") from error
