"""Pushes the serving services could not load are refused with a 422 naming the file or field,
through the registry's API; and the checks themselves, called as the registry calls them."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA
from marketsense.models.bundles import pack_bundle
from marketsense.models.checks import (
    InvalidUpload,
    check_predictor,
    check_sentiment,
    check_upload,
    parse_manifest,
)
from marketsense.models.files import MANIFEST_FILE, MODEL_FILE, QUANTIZED_MODEL_FILE
from marketsense.models.predictor import PredictorManifest
from marketsense.models.sentiment import SentimentManifest
from tests.artifacts import list_manifest_files
from tests.behaviour.models.pushes import PREDICTOR, SENTIMENT, refused, tar_file, tar_gz
from tests.registry_support import Registry
from tests.sentiment_support import linked_copy, read_manifest


def _sentiment_manifest(**fields: Any) -> bytes:
    """A valid sentiment manifest's JSON, with `fields` laid over it."""
    manifest = SentimentManifest(
        name="minilm",
        version="1",
        labels=["negative", "neutral", "positive"],
        max_length=64,
        input_names=["input_ids", "attention_mask"],
        output_name="logits",
        metrics={"heldout_macro_f1": 0.8},
        evaluation_window="heldout set v1",
    )
    return json.dumps(manifest.model_dump(mode="json") | fields).encode()


def _predictor_manifest(folder: Path, **changes: Any) -> bytes:
    """A folder's manifest JSON with `changes` applied (None deletes a field)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del manifest[key]
    return json.dumps(manifest).encode()


async def test_a_corrupt_onnx_file_is_refused(registry: Registry, predictor: Path) -> None:
    (predictor / "model.onnx").write_bytes(b"this is not an ONNX graph" * 10)
    list_manifest_files(predictor)

    detail = await refused(await registry.push(PREDICTOR, predictor), registry, PREDICTOR)

    assert detail.startswith("model.onnx does not load in onnxruntime: ")


async def test_an_input_name_the_graph_lacks_is_refused(
    registry: Registry, predictor: Path
) -> None:
    manifest = _predictor_manifest(predictor, input_name="x")
    response = await registry.push_parts(
        PREDICTOR, manifest=manifest, bundle=pack_bundle(predictor)
    )

    detail = await refused(response, registry, PREDICTOR)

    assert detail == "manifest input 'x' is not a graph input (graph has ['X'])"


async def test_an_output_name_the_graph_lacks_is_refused(
    registry: Registry, predictor: Path
) -> None:
    manifest = _predictor_manifest(predictor, probability_output="probs")
    response = await registry.push_parts(
        PREDICTOR, manifest=manifest, bundle=pack_bundle(predictor)
    )

    detail = await refused(response, registry, PREDICTOR)

    assert (
        detail
        == "manifest output 'probs' is not a graph output (graph has ['label', 'probabilities'])"
    )


async def test_an_output_that_is_not_two_class_probabilities_is_refused(
    registry: Registry, predictor: Path
) -> None:
    manifest = _predictor_manifest(predictor, probability_output="label")
    response = await registry.push_parts(
        PREDICTOR, manifest=manifest, bundle=pack_bundle(predictor)
    )

    detail = await refused(response, registry, PREDICTOR)

    assert detail.startswith("output 'label' has shape [1] for one row; expected [1, 2]")


async def test_an_unknown_feature_schema_is_refused(registry: Registry, predictor: Path) -> None:
    manifest = _predictor_manifest(predictor, feature_schema="foo-v9")
    response = await registry.push_parts(
        PREDICTOR, manifest=manifest, bundle=pack_bundle(predictor)
    )

    detail = await refused(response, registry, PREDICTOR)

    assert detail == (
        f"feature schema 'foo-v9' is not one processing produces (known: {FEATURE_SCHEMA})"
    )


async def test_a_feature_outside_the_schema_is_refused(registry: Registry, predictor: Path) -> None:
    features = [*FEATURE_COLUMNS[:-1], "moon_phase"]
    manifest = _predictor_manifest(predictor, features=features)
    response = await registry.push_parts(
        PREDICTOR, manifest=manifest, bundle=pack_bundle(predictor)
    )

    detail = await refused(response, registry, PREDICTOR)

    assert detail == (
        f"features ['moon_phase'] are not columns of feature schema '{FEATURE_SCHEMA}'"
    )


async def test_a_feature_count_the_graph_does_not_take_is_refused(
    registry: Registry, predictor: Path
) -> None:
    manifest = _predictor_manifest(predictor, features=list(FEATURE_COLUMNS[:5]))
    response = await registry.push_parts(
        PREDICTOR, manifest=manifest, bundle=pack_bundle(predictor)
    )

    detail = await refused(response, registry, PREDICTOR)

    assert detail == (
        f"graph input 'X' takes {len(FEATURE_COLUMNS)} features but the manifest lists 5"
    )


async def test_an_invalid_manifest_is_refused_naming_the_field(
    registry: Registry, predictor: Path
) -> None:
    without_features = _predictor_manifest(predictor, features=None)
    not_json = b"{'features': ["

    missing = await registry.push_parts(
        PREDICTOR, manifest=without_features, bundle=pack_bundle(predictor)
    )
    garbled = await registry.push_parts(PREDICTOR, manifest=not_json, bundle=pack_bundle(predictor))

    assert (await refused(missing, registry, PREDICTOR)) == (
        "manifest is invalid: features: Field required"
    )
    assert (await refused(garbled, registry, PREDICTOR)).startswith("manifest is not JSON")


async def test_a_manifest_of_another_kind_is_refused(registry: Registry, predictor: Path) -> None:
    response = await registry.push_parts(
        PREDICTOR, manifest=_sentiment_manifest(), bundle=pack_bundle(predictor)
    )

    detail = await refused(response, registry, PREDICTOR)

    assert detail == (
        "manifest kind 'sentiment' does not match model 'checked-predictor', "
        "which is registered as 'predictor'"
    )


async def test_a_bundle_without_its_graph_is_refused_and_its_own_manifest_ignored(
    registry: Registry, predictor: Path
) -> None:
    bundle = tar_gz(tar_file("manifest.json", (predictor / "manifest.json").read_bytes()))

    detail = await refused(
        await registry.push(PREDICTOR, predictor, bundle=bundle), registry, PREDICTOR
    )

    assert detail == "predictor bundle has no model.onnx"


async def test_a_sentiment_bundle_without_a_tokenizer_is_refused(registry: Registry) -> None:
    bundle = tar_gz(tar_file("model.onnx", b"graph bytes"))

    response = await registry.push_parts(SENTIMENT, manifest=_sentiment_manifest(), bundle=bundle)

    assert await refused(response, registry, SENTIMENT) == "sentiment bundle has no tokenizer.json"


async def test_a_sentiment_bundle_with_an_unloadable_tokenizer_is_refused(
    registry: Registry,
) -> None:
    files = {"model.onnx": b"graph bytes", "tokenizer.json": b'{"model": "half a toke'}
    bundle = tar_gz(*(tar_file(name, data) for name, data in files.items()))
    listed = [
        {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in files.items()
    ]

    response = await registry.push_parts(
        SENTIMENT, manifest=_sentiment_manifest(files=listed), bundle=bundle
    )

    assert (await refused(response, registry, SENTIMENT)).startswith(
        "tokenizer.json does not load: "
    )


async def test_a_push_that_is_not_the_two_part_form_is_refused(
    registry: Registry, predictor: Path
) -> None:
    only_manifest = await registry.api.post(
        f"/v1/models/{PREDICTOR}/versions",
        files={"manifest": ("manifest.json", (predictor / "manifest.json").read_bytes())},
        headers=registry.key("publisher"),
    )
    as_json = await registry.api.post(
        f"/v1/models/{PREDICTOR}/versions", json={"manifest": {}}, headers=registry.key("publisher")
    )
    extra_part = await registry.api.post(
        f"/v1/models/{PREDICTOR}/versions",
        files={
            "manifest": ("manifest.json", (predictor / "manifest.json").read_bytes()),
            "bundle": ("b.tgz", pack_bundle(predictor)),
            "readme": ("README", b"hello"),
        },
        headers=registry.key("publisher"),
    )
    unknown_model = await registry.push("no-such-model", predictor)

    assert (await refused(only_manifest, registry, PREDICTOR)) == (
        "the push lacks the form part(s) ['bundle']"
    )
    assert "multipart/form-data" in await refused(as_json, registry, PREDICTOR)
    assert "unexpected form part 'readme'" in await refused(extra_part, registry, PREDICTOR)
    assert unknown_model.status_code == 404


# --- the checks as the registry calls them -------------------------------------------------------


def constant_graph(
    path: Path, probabilities: list[float], *, element: int = TensorProto.FLOAT
) -> None:
    """An ONNX graph of one input `X` (a row of every feature) answering `probabilities` as
    `probabilities` for every row, in the element type given."""
    dtype = helper.tensor_dtype_to_np_dtype(element)
    width = len(FEATURE_COLUMNS)
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["XW"]),
        helper.make_node("Add", ["XW", "B"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        "constant",
        [helper.make_tensor_value_info("X", element, [None, width])],
        [helper.make_tensor_value_info("probabilities", element, [None, 2])],
        initializer=[
            numpy_helper.from_array(np.zeros((width, 2), dtype), "W"),
            numpy_helper.from_array(np.array(probabilities, dtype), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what the installed onnxruntime reads, whatever onnx writes by default
    path.write_bytes(model.SerializeToString())


def predictor_manifest(folder: Path, **changes: Any) -> PredictorManifest:
    """A folder's predictor manifest, with `changes`, reading input `X` of a constant graph."""
    manifest = PredictorManifest.model_validate_json((folder / MANIFEST_FILE).read_text())
    return manifest.model_copy(update={"input_name": "X", **changes})


def test_the_registry_names_and_numbers_the_version_whatever_the_pusher_wrote() -> None:
    pushed = _sentiment_manifest(name="my-own-name", version="9")

    parsed = parse_manifest(kind="sentiment", model_name=SENTIMENT, data=pushed)

    assert isinstance(parsed, SentimentManifest)
    assert parsed.name == SENTIMENT
    assert parsed.version == "0"  # a placeholder until the registry numbers the version
    assert parsed.metrics == {"heldout_macro_f1": 0.8}


def test_a_manifest_without_a_kind_takes_the_registered_one(predictor: Path) -> None:
    raw = json.loads((predictor / MANIFEST_FILE).read_text())
    del raw["kind"]

    parsed = parse_manifest(kind="predictor", model_name=PREDICTOR, data=json.dumps(raw).encode())

    assert isinstance(parsed, PredictorManifest)
    assert parsed.kind == "predictor"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"[1, 2]", "manifest must be a JSON object"),
        (b'"predictor"', "manifest must be a JSON object"),
        (b"\xff\xfe{}", "manifest is not JSON"),
        (b"", "manifest is not JSON"),
    ],
)
def test_a_manifest_that_is_not_a_json_object_is_refused(data: bytes, problem: str) -> None:
    with pytest.raises(InvalidUpload, match=problem):
        parse_manifest(kind="predictor", model_name=PREDICTOR, data=data)


@pytest.mark.parametrize(
    ("features", "problem"),
    [
        ([], "manifest lists no features"),
        (
            ["ret_1d", "rsi_14", "ret_1d"],
            r"manifest lists the features \['ret_1d'\] more than once",
        ),
    ],
)
def test_no_features_or_a_feature_listed_twice_is_refused(
    predictor: Path, features: list[str], problem: str
) -> None:
    with pytest.raises(InvalidUpload, match=problem):
        check_predictor(predictor, predictor_manifest(predictor, features=features))


def test_a_graph_reading_doubles_is_refused(predictor: Path) -> None:
    constant_graph(predictor / MODEL_FILE, [0.4, 0.6], element=TensorProto.DOUBLE)

    with pytest.raises(InvalidUpload, match=r"graph input 'X' is tensor\(double\), not float32"):
        check_predictor(predictor, predictor_manifest(predictor))


@pytest.mark.parametrize(
    "probabilities",
    [
        pytest.param([0.9, 0.9], id="summing-past-one"),
        pytest.param([1.5, -0.5], id="outside-zero-to-one"),
        pytest.param([float("nan"), 0.5], id="not-a-number"),
    ],
)
def test_an_output_that_is_not_probabilities_is_refused(
    predictor: Path, probabilities: list[float]
) -> None:
    constant_graph(predictor / MODEL_FILE, probabilities)

    with pytest.raises(InvalidUpload, match="output 'probabilities' is not probabilities"):
        check_predictor(predictor, predictor_manifest(predictor))


def test_a_valid_push_is_unpacked_with_the_registrys_manifest(
    predictor: Path, tmp_path: Path
) -> None:
    constant_graph(predictor / MODEL_FILE, [0.25, 0.75])
    manifest = predictor_manifest(list_manifest_files(predictor)).model_dump_json().encode()
    (tmp_path / "checked").mkdir()

    checked = check_upload(
        kind="predictor",
        model_name=PREDICTOR,
        manifest_bytes=manifest,
        bundle=io.BytesIO(pack_bundle(predictor)),
        directory=tmp_path / "checked",
        max_unpacked_bytes=1 << 20,
    )

    assert checked.files == [MODEL_FILE]
    assert checked.directory == tmp_path / "checked"
    assert isinstance(checked.manifest, PredictorManifest)
    assert (checked.manifest.name, checked.manifest.input_name) == (PREDICTOR, "X")
    stored = json.loads((checked.directory / MANIFEST_FILE).read_text())
    assert stored["name"] == PREDICTOR
    assert (checked.directory / MODEL_FILE).read_bytes() == (predictor / MODEL_FILE).read_bytes()


def test_a_bundle_unpacking_past_the_limit_is_an_invalid_upload(
    predictor: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidUpload, match="unpacks to more than 100 bytes"):
        check_upload(
            kind="predictor",
            model_name=PREDICTOR,
            manifest_bytes=(predictor / MANIFEST_FILE).read_bytes(),
            bundle=io.BytesIO(pack_bundle(predictor)),
            directory=tmp_path / "checked",
            max_unpacked_bytes=100,
        )


def test_a_sentiment_model_feeding_an_unknown_feature_schema_is_refused(tmp_path: Path) -> None:
    manifest = SentimentManifest.model_validate_json(
        _sentiment_manifest(feeds_feature_schema="words-v9")
    )

    with pytest.raises(InvalidUpload, match="feature schema 'words-v9' is not one processing"):
        check_sentiment(tmp_path, manifest)


def test_a_broken_int8_graph_is_refused_though_the_fp32_one_loads(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = linked_copy(sentiment_model_dir, tmp_path / "artifact")
    (artifact / QUANTIZED_MODEL_FILE).unlink()  # a hard link: never write through it
    (artifact / QUANTIZED_MODEL_FILE).write_bytes(b"not a graph")

    with pytest.raises(InvalidUpload, match=r"model\.int8\.onnx does not load in onnxruntime"):
        check_sentiment(artifact, read_manifest(artifact))


def test_a_sentiment_manifest_the_graph_does_not_match_is_refused(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = linked_copy(sentiment_model_dir, tmp_path / "artifact")
    manifest = read_manifest(artifact).model_copy(
        update={"labels": ["negative", "neutral", "positive", "mixed"]}
    )
    (artifact / MANIFEST_FILE).write_text(manifest.model_dump_json())

    with pytest.raises(InvalidUpload, match=r"model\.onnx does not match the manifest: .*4 labels"):
        check_sentiment(artifact, manifest)
