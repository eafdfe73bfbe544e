"""A data scientist's own Hugging Face model, from `export-hf` to scores served by processing.

The model is built here: a small BERT with its own WordPiece tokenizer and its labels in another
order than the default model's, fine-tuned on clearly signed sentences. It is converted with
`marketsense models export-hf`, pushed and promoted with plain HTTP (no project client, as from a
notebook), and served by processing on Kafka, PostgreSQL and S3. Processing's scores must equal the
Hugging Face model's own torch output: to 1e-4 for fp32, within the registry's int8 tolerance.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import tarfile
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest
import torch
from aiokafka import AIOKafkaProducer
from sqlalchemy import select
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
from marketsense.common.db.models import FeatureSet, Run, Task
from marketsense.common.events import Envelope, RawDataReady
from marketsense.common.features import MIN_BARS
from marketsense.common.parquet import from_parquet_bytes, to_parquet_bytes
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.common.store import ObjectStore
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.models.files import MANIFEST_FILE
from marketsense.models.parity import INT8_TOLERANCE
from marketsense.models.probes import probe_texts
from tests.backends import as_environment, real_servers, s3_store
from tests.bad_events_support import unused_trading_day
from tests.cli_support import invoke
from tests.conftest import eventually, infra
from tests.e2e.processes import running_services
from tests.model_registry_rows import new_api_key

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

LABELS = ["positive", "negative", "neutral"]
"""The model's logit order: not the default model's negative, neutral, positive."""

SUBJECTS = ("The company", "Shares of the group", "The bank", "The stock", "The firm")
PHRASES = {
    "positive": (
        "soared on record profits",
        "raised its outlook and its dividend",
        "rallied to an all-time high",
        "beat every estimate as margins improved",
        "won a major contract",
        "was upgraded after strong results",
        "jumped as revenue grew sharply",
    ),
    "negative": (
        "plunged after a huge loss",
        "cut its outlook and suspended its dividend",
        "crashed to a record low",
        "missed every estimate as margins fell",
        "warned of bankruptcy and mass layoffs",
        "was downgraded after weak results",
        "collapsed as revenue shrank",
    ),
    "neutral": (
        "will hold its annual general meeting on Thursday",
        "moved to a new office building",
        "publishes its quarterly report in May",
        "appointed a new secretary to the board",
        "opens trading at the usual time tomorrow",
        "meets next week to discuss the agenda",
    ),
}
"""Clearly signed training sentences: subject x phrase."""

SERVED_TEXTS = (
    "The bank soared after record profits and a higher dividend.",
    "The firm crashed after a huge loss and mass layoffs.",
    "The company will hold its annual general meeting.",
    "Shares of the group rallied.",
    "The stock plunged.",
    "The board appointed a new secretary on Thursday, and the group said its quarterly report "
    "would be published in May after the annual general meeting had discussed the agenda.",
)
"""Texts processing scores, one per symbol; unseen combinations of the training words."""

FP32_TOLERANCE = 1e-4
"""Largest |processing - torch| score allowed for the fp32 graph."""


def _training_set() -> tuple[list[str], torch.Tensor]:
    rows = [
        (f"{subject} {phrase}.", LABELS.index(label))
        for label, phrases in PHRASES.items()
        for subject, phrase in itertools.product(SUBJECTS, phrases)
    ]
    # A real model has read headlines like the registry's label probes; this one has a 400-word
    # vocabulary, so it learns them too, and the probe then judges its label order, not its words.
    rows += [
        (text, LABELS.index(label))
        for label, texts in probe_texts(LABELS).items()
        for text in texts
    ]
    return [text for text, _ in rows], torch.tensor([label for _, label in rows])


def _own_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer trained on `texts` alone."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials)
    )
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def build_hf_model(directory: Path) -> None:
    """Train and save the small classifier as `save_pretrained` saves any Hub model."""
    texts, labels = _training_set()
    tokenizer = _own_tokenizer(texts)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    model = BertForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    model.train()
    for _ in range(150):
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()  # type: ignore[no-untyped-call]
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def torch_scores(directory: Path, texts: tuple[str, ...]) -> list[float]:
    """P(positive) - P(negative) per text from the Hugging Face model itself, one text at a time."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(directory)
    model = BertForSequenceClassification.from_pretrained(directory)
    model.eval()  # type: ignore[no-untyped-call]
    scores = []
    with torch.inference_mode():
        for text in texts:
            logits = model(**tokenizer([text], truncation=True, return_tensors="pt")).logits
            probabilities = torch.softmax(logits.double(), dim=1)[0]
            scores.append(float(probabilities[0] - probabilities[1]))
    return scores


def _tarball(folder: Path) -> bytes:
    """The bundle as anyone would pack it: a gzip tar of the folder's files but the manifest."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.iterdir()):
            if path.name != MANIFEST_FILE:
                tar.add(path, arcname=path.name)
    return buffer.getvalue()


async def _push_and_promote(client: httpx.AsyncClient, api: str, name: str, folder: Path) -> None:
    """Register, push and promote over plain HTTP, as a notebook would."""
    created = await client.post(
        f"{api}/v1/models", json={"name": name, "kind": "sentiment", "description": "own BERT"}
    )
    assert created.status_code == 201, created.text
    pushed = await client.post(
        f"{api}/v1/models/{name}/versions",
        files={
            "manifest": ("manifest.json", (folder / MANIFEST_FILE).read_bytes()),
            "bundle": ("bundle.tar.gz", _tarball(folder)),
        },
    )
    assert pushed.status_code == 201, pushed.text
    version = pushed.json()["version"]
    promoted = await client.put(
        f"{api}/v1/models/{name}/aliases/production",
        json={"version": version, "reason": "our own model"},
    )
    assert promoted.status_code == 200, promoted.text


async def _new_run(database: Database, as_of: dt.date, symbols: list[str]) -> str:
    """A running run whose symbols were ingested and wait to be processed."""
    run_id = str(uuid.uuid4())
    async with database.session() as session:
        session.add(Run(id=run_id, as_of=as_of, state=RunState.RUNNING, symbols=len(symbols)))
        await session.flush()
        for symbol in symbols:
            session.add(
                Task(run_id=run_id, symbol=symbol, stage=Stage.INGEST, state=TaskState.SUCCESS)
            )
            session.add(
                Task(run_id=run_id, symbol=symbol, stage=Stage.PROCESS, state=TaskState.PENDING)
            )
        await session.commit()
    return run_id


async def _served_scores(
    database: Database, store: ObjectStore, prefix: str, as_of: dt.date
) -> list[float]:
    """Send processing one symbol per text for `as_of`; each feature row's mean sentiment."""
    symbols = [f"H{i:02d}" for i in range(len(SERVED_TEXTS))]
    run_id = await _new_run(database, as_of, symbols)
    producer = AIOKafkaProducer(bootstrap_servers=infra("MARKETSENSE_TEST_KAFKA"))
    await producer.start()
    try:
        for symbol, text in zip(symbols, SERVED_TEXTS, strict=True):
            bars = SimulatedMarket(seed=7).daily_bars(symbol, as_of=as_of, days=MIN_BARS)
            texts = pd.DataFrame({"date": [as_of], "text": [text], "source": ["test"]})
            key = f"raw/hf/{run_id}/{symbol}"
            event = RawDataReady(
                as_of=as_of,
                bars=await store.put(f"{key}-bars.parquet", to_parquet_bytes(bars)),
                rows=len(bars),
                texts=await store.put(f"{key}-texts.parquet", to_parquet_bytes(texts)),
                text_items=1,
            )
            envelope = Envelope.wrap(event, run_id=run_id, symbol=symbol)
            await producer.send(
                prefix + RawDataReady.topic, envelope.to_bytes(), key=symbol.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()

    rows: list[FeatureSet] = []

    async def all_processed() -> bool:
        nonlocal rows
        async with database.session() as session:
            found = await session.scalars(select(FeatureSet).where(FeatureSet.run_id == run_id))
            rows = list(found)
        return len(rows) == len(symbols)

    await eventually(all_processed, timeout=90, interval=0.5)
    by_symbol = {row.symbol: row for row in rows}
    scores = []
    for symbol in symbols:
        features = from_parquet_bytes(await store.get(by_symbol[symbol].ref()))
        assert int(features["sentiment_count"].iloc[-1]) == 1, symbol
        scores.append(float(features["sentiment_mean"].iloc[-1]))
    return scores


async def test_an_own_hf_model_is_exported_pushed_promoted_and_served_as_torch_scores_it(
    pg_database: Database, fresh_pg_database_url: str, tmp_path: Path, prefix: str
) -> None:
    source, out = tmp_path / "my-bert", tmp_path / "my-bert-onnx"
    build_hf_model(source)
    expected = torch_scores(source, SERVED_TEXTS)
    # The model says what its training says: otherwise equal scores would prove little.
    assert expected[0] > 0.5, expected
    assert expected[1] < -0.5, expected

    name = f"my-bert-{uuid.uuid4().hex[:6]}"
    exported = invoke("models", "export-hf", str(source), "--out", str(out), "--name", name)
    assert exported.exit_code == 0, exported.stdout + exported.stderr
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["labels"] == LABELS

    settings = real_servers(
        database_url=fresh_pg_database_url, prefix=prefix, bucket="marketsense-e2e"
    )
    env = as_environment(
        settings
        | {
            "home": tmp_path / "home",
            "sentiment_model": name,
            # A 400-word model trained on 35 sentences is not good on the held-out news; the
            # first-promotion floor is an operator's setting, lowered here on purpose.
            "registry_min_heldout_macro_f1": 0.0,
            "sentiment_model_path": tmp_path / "no-local-model",
            "model_poll_seconds": 1,
            "log_level": "WARNING",
        }
    )
    approver = await new_api_key(pg_database, role=Role.APPROVER)
    store = s3_store(settings["object_store_url"])
    await store.start()
    served: dict[str, list[float]] = {}
    try:
        with running_services(("registry",), env, tmp_path) as registry:
            async with httpx.AsyncClient(timeout=120, headers={"X-API-Key": approver}) as client:
                await registry.wait_ready(client)
                await _push_and_promote(client, registry.url("registry"), name, out)
                for variant, quantized in (("fp32", "false"), ("int8", "true")):
                    variant_env = env | {"MARKETSENSE_SENTIMENT_QUANTIZED": quantized}
                    logs = tmp_path / variant
                    logs.mkdir()
                    with running_services(("processing",), variant_env, logs) as processing:
                        await processing.wait_ready(client)
                        served[variant] = await _served_scores(
                            pg_database, store, prefix, unused_trading_day()
                        )
    finally:
        await store.close()

    fp32_gap = max(abs(a - b) for a, b in zip(served["fp32"], expected, strict=True))
    int8_gap = max(abs(a - b) for a, b in zip(served["int8"], expected, strict=True))
    assert fp32_gap <= FP32_TOLERANCE, (served["fp32"], expected)
    # A score is a difference of two probabilities, each within the tolerance.
    assert int8_gap <= 2 * INT8_TOLERANCE, (served["int8"], expected)
