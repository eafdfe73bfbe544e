"""Log lines as a log shipper reads them: one JSON object each, tagged with the run and symbol of
the work in hand, or plain text when asked."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from marketsense.common.logs import configure_logging, log_context

log = logging.getLogger("marketsense.test")


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """Put the root logger (and aiokafka's level) back as pytest had them."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    kafka_level = logging.getLogger("aiokafka").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(kafka_level)


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Every line written to stderr so far, parsed."""
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_a_json_line_names_time_level_logger_service_message_run_and_symbol(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(service="processing")

    with log_context(run_id="r1", symbol="AAPL"):
        log.info("features stored: %d rows", 60)

    [line] = json_lines(capsys)
    assert {k: v for k, v in line.items() if k != "time"} == {
        "level": "INFO",
        "logger": "marketsense.test",
        "message": "features stored: 60 rows",
        "run_id": "r1",
        "symbol": "AAPL",
        "service": "processing",
    }
    assert line["time"][:2] == "20"


def test_outside_a_context_run_and_symbol_are_null_and_without_a_service_none_is_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()

    log.warning("no work in hand")

    [line] = json_lines(capsys)
    assert (line["run_id"], line["symbol"], line["level"]) == (None, None, "WARNING")
    assert "service" not in line


def test_a_nested_context_restores_the_outer_one_when_it_ends(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()

    with log_context(run_id="r1", symbol=None):
        log.info("run")
        with log_context(run_id="r1", symbol="MSFT"):
            log.info("symbol")
        log.info("run again")
    log.info("after")

    tags = [(line["run_id"], line["symbol"]) for line in json_lines(capsys)]
    assert tags == [("r1", None), ("r1", "MSFT"), ("r1", None), (None, None)]


async def test_concurrent_tasks_each_log_their_own_run_and_symbol(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()
    both_inside = asyncio.Barrier(2)

    async def work(symbol: str) -> None:
        with log_context(run_id=f"run-{symbol}", symbol=symbol):
            await both_inside.wait()  # the other task's context is set too by now
            log.info("handled")

    await asyncio.gather(work("AAA"), work("BBB"))

    tags = sorted((line["run_id"], line["symbol"]) for line in json_lines(capsys))
    assert tags == [("run-AAA", "AAA"), ("run-BBB", "BBB")]


def test_plain_text_lines_when_json_is_off(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json_lines=False, service="registry")

    with log_context(run_id="r1", symbol="AAPL"):
        log.error("model %s failed to load", "m:3")

    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith(" ERROR marketsense.test: model m:3 failed to load")
    assert not line.startswith("{")


def test_the_level_drops_quieter_lines_and_any_case_is_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(level="warning")

    log.info("quiet")
    log.warning("loud")

    assert [line["message"] for line in json_lines(capsys)] == ["loud"]


def test_configuring_again_replaces_the_handler_instead_of_adding_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()
    configure_logging()

    log.info("once")

    assert len(json_lines(capsys)) == 1


def test_kafka_clients_reconnect_chatter_is_kept_below_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(level="DEBUG")

    logging.getLogger("aiokafka.conn").info("connecting to node 1")
    logging.getLogger("aiokafka.conn").warning("node 1 is unreachable")
    log.debug("ours at debug")

    assert [line["message"] for line in json_lines(capsys)] == [
        "node 1 is unreachable",
        "ours at debug",
    ]


def test_kafka_clients_repeated_errors_are_logged_once_a_minute_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # While a broker is away aiokafka logs each failed reconnect and fetch several times a second.
    configure_logging(service="processing")
    client = logging.getLogger("aiokafka.client")
    fetcher = logging.getLogger("aiokafka.consumer.fetcher")

    for attempt in range(500):
        client.error("Unable connect to node with id %s: %s", 1, f"refused #{attempt}")
        fetcher.error("Failed fetch messages from %s: %s", 1, "NodeNotReadyError")
        log.error("a product error, every time")

    messages = [line["message"] for line in json_lines(capsys)]
    assert messages.count("a product error, every time") == 500
    assert [m for m in messages if "node" in m.lower() or "fetch" in m.lower()] == [
        "Unable connect to node with id 1: refused #0",
        "Failed fetch messages from 1: NodeNotReadyError",
    ]
