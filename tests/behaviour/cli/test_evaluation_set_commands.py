"""`marketsense models evaluation-set add|list|from-runs` against a served registry: results on
stdout, one error line on stderr, the key never shown."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

from tests.cli_support import one_error_line
from tests.evaluation_set_support import predictor_parquet, sentiment_csv
from tests.served_registry_support import (
    Keys,
    ServedRegistry,
    run,
)


def test_sets_are_added_once_and_listed_newest_first_with_the_active_marked(
    registry: ServedRegistry, keys: Keys, tmp_path: Path
) -> None:
    # A served registry on PostgreSQL shares its database with other tests: unique bytes and names.
    tag = uuid.uuid4().hex[:8]
    texts = tmp_path / f"desk-texts-{tag}.csv"
    texts.write_bytes(sentiment_csv(prefix=tag))
    rows = tmp_path / "rows.parquet"
    rows.write_bytes(predictor_parquet(seed=int(tag, 16)))
    digest = hashlib.sha256(texts.read_bytes()).hexdigest()

    added = run(registry, keys.approver, "models", "evaluation-set", "add", "sentiment", str(texts))
    again = run(registry, keys.approver, "models", "evaluation-set", "add", "sentiment", str(texts))
    predictor = run(
        registry,
        keys.approver,
        "models",
        "evaluation-set",
        "add",
        "predictor",
        str(rows),
        "--name",
        f"q3-rows-{tag}",
        "--json",
    )
    listed = run(registry, keys.reader, "models", "evaluation-set", "list", "--json")
    first_page = run(
        registry, keys.reader, "models", "evaluation-set", "list", "--limit", "1", "--json"
    )
    table = run(registry, keys.reader, "models", "evaluation-set", "list", "--limit", "1")

    assert added.exit_code == 0, added.stderr
    assert added.stdout.startswith("added evaluation set ")
    assert f"sentiment desk-texts-{tag}, 24 rows, sha256 {digest}" in added.stdout
    assert again.stdout.startswith("already stored as evaluation set ")
    assert json.loads(predictor.stdout)["name"] == f"q3-rows-{tag}"
    items = json.loads(listed.stdout)["items"]
    assert [(i["kind"], i["name"], i["active"]) for i in items[:2]] == [
        ("predictor", f"q3-rows-{tag}", True),
        ("sentiment", f"desk-texts-{tag}", True),
    ]
    page = json.loads(first_page.stdout)
    assert [item["name"] for item in page["items"]] == [f"q3-rows-{tag}"]
    assert f"more: --cursor {page['next_cursor']}" in table.stdout


def test_a_publisher_cannot_add_a_set_and_is_told_in_one_line(
    registry: ServedRegistry, keys: Keys, tmp_path: Path
) -> None:
    texts = tmp_path / "texts.csv"
    texts.write_bytes(sentiment_csv())

    refused = run(
        registry, keys.publisher, "models", "evaluation-set", "add", "sentiment", str(texts)
    )

    assert "this needs the approver role" in one_error_line(refused)


def test_a_set_the_registry_refuses_is_one_line_saying_why(
    registry: ServedRegistry, keys: Keys, tmp_path: Path
) -> None:
    short = tmp_path / "short.csv"
    short.write_bytes(sentiment_csv(rows=5))

    refused = run(
        registry, keys.approver, "models", "evaluation-set", "add", "sentiment", str(short)
    )

    assert "it needs at least 20" in one_error_line(refused)


def test_from_runs_over_a_window_without_runs_says_to_run_the_pipeline(
    registry: ServedRegistry, keys: Keys
) -> None:
    refused = run(
        registry,
        keys.approver,
        "models",
        "evaluation-set",
        "from-runs",
        "--start",
        "2026-01-05",
        "--end",
        "2026-02-27",
    )

    assert "no finished run stored features" in one_error_line(refused)
