"""Pushes that would put other scores into production than the ones checked, replayed over HTTP:
each is refused with 422 saying why, and the genuine version is still accepted."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from marketsense.models.bundles import pack_bundle
from marketsense.models.files import MANIFEST_FILE, MODEL_FILE, QUANTIZED_MODEL_FILE
from marketsense.models.probes import PROBE_TEXTS
from tests.artifacts import list_manifest_files
from tests.behaviour.models.pushes import refused
from tests.registry_support import Registry, packed
from tests.sentiment_support import linked_copy, shift_logits, write_reference

# The checks, not the storage backends, are under attack here: one database and store suffice.
pytestmark = pytest.mark.parametrize(("database_url", "store"), [("sqlite", "file")], indirect=True)

MODEL = "finance-sentiment"
REFERENCE_TEXTS = [text for texts in PROBE_TEXTS.values() for text in texts][::2]


@pytest.fixture
async def sentiment(registry: Registry) -> Registry:
    """The registry with a sentiment model registered."""
    assert (await registry.create_model(MODEL, kind="sentiment")).status_code == 201
    return registry


@pytest.fixture(scope="module")
def genuine_template(sentiment_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model with the reference its exporter would write, every file listed: scored
    once for the module, as every test starts from the same files."""
    artifact = linked_copy(sentiment_model_dir, tmp_path_factory.mktemp("attacks") / "genuine")
    return list_manifest_files(write_reference(artifact, REFERENCE_TEXTS))


@pytest.fixture
def genuine(genuine_template: Path, tmp_path: Path) -> Path:
    """A test's own copy of the genuine model to tamper with (graphs are hard links, which the
    tampering helpers replace rather than write through)."""
    return linked_copy(genuine_template, tmp_path / "genuine")


def _rewrite_manifest(folder: Path, **changes: Any) -> Path:
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest | changes))
    return folder


def _tar_with_manifest(folder: Path, manifest: Path) -> bytes:
    """A gzip tar of the folder's files and `manifest` as its own manifest.json."""
    buffer = io.BytesIO()
    # Level 1, as pack_bundle packs: tarfile's default level 9 spends several times the CPU on
    # 150 MB of graphs that barely compress.
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for path in sorted(folder.iterdir()):
            if path.name != MANIFEST_FILE:
                tar.add(path, arcname=path.name)
        tar.add(manifest, arcname=MANIFEST_FILE)
    return buffer.getvalue()


async def test_the_genuine_version_is_accepted(sentiment: Registry, genuine: Path) -> None:
    response = await sentiment.push(MODEL, genuine)

    assert response.status_code == 201, response.text
    assert (
        response.json()["manifest"]["files"]
        == json.loads((genuine / MANIFEST_FILE).read_text())["files"]
    )


async def test_flipped_labels_are_refused_naming_the_order_that_fits(
    sentiment: Registry, genuine: Path
) -> None:
    _rewrite_manifest(genuine, labels=["positive", "neutral", "negative"])

    detail = await refused(await sentiment.push(MODEL, genuine), sentiment, MODEL)

    assert detail.startswith(
        "labels ['positive', 'neutral', 'negative'] contradict the graph's scores: "
    )
    assert "the order that fits the scores is ['negative', 'neutral', 'positive']" in detail


async def test_an_fp32_graph_swapped_under_an_unchanged_int8_is_refused(
    sentiment: Registry, genuine: Path
) -> None:
    shift_logits(genuine / MODEL_FILE, [2.0, 0.0, -2.0])
    list_manifest_files(genuine)

    detail = await refused(await sentiment.push(MODEL, genuine), sentiment, MODEL)

    assert detail.startswith("model.onnx (fp32) gives probabilities up to ")
    assert "away from reference.json" in detail


async def test_without_a_reference_a_swapped_fp32_graph_is_caught_by_the_int8_one(
    sentiment: Registry, genuine: Path
) -> None:
    (genuine / "reference.json").unlink()
    shift_logits(genuine / MODEL_FILE, [2.0, 0.0, -2.0])
    list_manifest_files(genuine)

    detail = await refused(await sentiment.push(MODEL, genuine), sentiment, MODEL)

    assert detail.startswith("model.int8.onnx (int8) gives probabilities up to ")
    assert "away from model.onnx" in detail
    assert "the two graphs do not hold the same weights" in detail


async def test_a_swapped_int8_graph_is_refused(sentiment: Registry, genuine: Path) -> None:
    shift_logits(genuine / QUANTIZED_MODEL_FILE, [-10.0, 0.0, 10.0])
    list_manifest_files(genuine)

    detail = await refused(await sentiment.push(MODEL, genuine), sentiment, MODEL)

    assert detail.startswith("model.int8.onnx (int8) gives probabilities up to ")
    assert "at most 0.25 is allowed for int8" in detail


async def test_a_misspelt_manifest_field_is_refused_by_name(
    sentiment: Registry, genuine: Path
) -> None:
    manifest = json.loads((genuine / MANIFEST_FILE).read_text())
    manifest["evalution_window"] = manifest.pop("evaluation_window")
    (genuine / MANIFEST_FILE).write_text(json.dumps(manifest))

    detail = await refused(await sentiment.push(MODEL, genuine), sentiment, MODEL)

    assert detail.startswith(
        "manifest has unknown fields ['evalution_window'] "
        "(did you mean 'evalution_window' -> 'evaluation_window'?)"
    )


async def test_a_bundled_manifest_differing_from_the_form_part_is_refused(
    sentiment: Registry, genuine: Path, tmp_path: Path
) -> None:
    sent = (genuine / MANIFEST_FILE).read_bytes()
    inflated = json.loads(sent)
    inflated["metrics"] = {"heldout_macro_f1": 0.99}
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(inflated))
    bundle = _tar_with_manifest(genuine, tmp_path / MANIFEST_FILE)

    response = await sentiment.push_parts(MODEL, manifest=sent, bundle=bundle)

    assert await refused(response, sentiment, MODEL) == (
        "the bundle's own manifest.json differs from the manifest form part "
        "(fields ['metrics'] differ); send the same manifest in both or leave it out of the bundle"
    )


async def test_an_identical_bundled_manifest_is_accepted(
    sentiment: Registry, genuine: Path, tmp_path: Path
) -> None:
    bundle = _tar_with_manifest(genuine, genuine / MANIFEST_FILE)

    response = await sentiment.push_parts(
        MODEL, manifest=(genuine / MANIFEST_FILE).read_bytes(), bundle=bundle
    )

    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("max_length", "problem"),
    [
        (100_000, "manifest is invalid: max_length: Input should be less than or equal to 8192"),
        (1024, "model.onnx fails on a text of the declared max_length=1024 tokens: "),
    ],
)
async def test_a_max_length_the_graph_cannot_take_is_refused(
    sentiment: Registry, genuine: Path, max_length: int, problem: str
) -> None:
    _rewrite_manifest(genuine, max_length=max_length)

    detail = await refused(await sentiment.push(MODEL, genuine), sentiment, MODEL)

    assert detail.startswith(problem)


async def test_a_file_changed_after_its_manifest_was_written_is_refused(
    sentiment: Registry, genuine: Path
) -> None:
    tokenizer = json.loads((genuine / "tokenizer.json").read_text())
    tokenizer["truncation"] = None
    (genuine / "tokenizer.json").write_text(json.dumps(tokenizer))

    detail = await refused(await sentiment.push(MODEL, genuine), sentiment, MODEL)

    assert detail.startswith("bundle file 'tokenizer.json' has ")
    assert "manifest field `files` says" in detail


async def test_a_manifest_without_its_file_list_is_refused(
    sentiment: Registry, genuine: Path
) -> None:
    _rewrite_manifest(genuine, files=[])

    detail = await refused(await sentiment.push(MODEL, genuine), sentiment, MODEL)

    assert detail.startswith("manifest field `files` is empty")


async def test_a_bundle_missing_a_listed_file_is_refused(
    sentiment: Registry, genuine: Path
) -> None:
    complete = packed(genuine)
    (genuine / QUANTIZED_MODEL_FILE).unlink()
    lacking = pack_bundle(genuine)

    response = await sentiment.push_parts(
        MODEL, manifest=(genuine / MANIFEST_FILE).read_bytes(), bundle=lacking
    )

    assert lacking != complete
    assert await refused(response, sentiment, MODEL) == (
        "manifest field `files` lists ['model.int8.onnx'], which the bundle lacks"
    )
