"""The source interface: what a source returns, and which of its failures are worth a retry."""

from __future__ import annotations

import pandas as pd
import pytest

from marketsense.common.errors import NonRetryableError, RetryableError
from marketsense.ingestion.sources.base import (
    TEXT_COLUMNS,
    SourceRejected,
    SourceUnavailable,
    SymbolData,
    empty_texts,
)


def test_no_texts_is_an_empty_frame_with_every_column() -> None:
    texts = empty_texts()

    assert texts.empty
    assert list(texts.columns) == list(TEXT_COLUMNS)
    assert (texts.dtypes == "object").all()


def test_each_empty_texts_frame_is_a_new_one() -> None:
    first = empty_texts()
    first.loc[0] = ["id", pd.Timestamp("2026-11-20", tz="UTC"), None, "news", "text"]

    assert empty_texts().empty


def test_symbol_data_without_issues_has_its_own_empty_list() -> None:
    one = SymbolData(bars=pd.DataFrame(), texts=empty_texts())
    other = SymbolData(bars=pd.DataFrame(), texts=empty_texts())
    one.issues.append("AAA: dropped 1 row with a missing price")

    assert other.issues == []


@pytest.mark.parametrize(("error", "retried"), [(SourceUnavailable, True), (SourceRejected, False)])
def test_a_passing_failure_is_retried_and_a_refusal_is_not(
    error: type[Exception], retried: bool
) -> None:
    assert issubclass(error, RetryableError) is retried
    assert issubclass(error, NonRetryableError) is not retried
