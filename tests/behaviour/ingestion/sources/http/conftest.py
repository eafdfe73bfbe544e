"""Fixtures of the HTTP source suites: a local server, and a recorder of back-off waits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer

from tests.behaviour.ingestion.sources.http.replies import Sleeps


@pytest.fixture
def sleeps() -> Sleeps:
    """A fresh recorder of back-off waits."""
    return Sleeps()


@pytest.fixture
def server(httpserver: HTTPServer) -> Iterator[HTTPServer]:
    """The local server; a request no handler expected fails the test."""
    yield httpserver
    httpserver.check_assertions()
