"""Fuzzing a service's OpenAPI in-process with schemathesis, bounded in examples and time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from marketsense.common.auth import KEY_HEADER

MAX_EXAMPLES = 15
"""Generated requests per operation and generation mode (valid, invalid)."""

DEADLINE = dt.timedelta(seconds=5)
"""Longest one generated request may take before the fuzzing fails."""

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Routes that answer without an API key: probes and Prometheus."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
"""No 5xx; every status, content type, body and header as documented; invalid input refused."""

_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same requests on every run: a failure reproduces
    deadline=DEADLINE,
    database=None,
    # The app answers from another thread's event loop; its first requests are slower.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


Operation = APIOperation[Any, Any, Any, Any]

_CONFIG = {
    "generation": {
        # Unknown query parameters are ignored by design, not an error to provoke.
        "allow-extra-parameters": False,
        # The tests send a real key; a generated one would only ever be refused.
        "with-security-parameters": False,
    }
}


def load_schema(app: FastAPI) -> OpenApiSchema:
    """The app's OpenAPI document as served; schemathesis starts the app's lifespan for it."""
    config = SchemathesisConfig.from_dict(_CONFIG)
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


def stop_apps() -> None:
    """End the lifespans schemathesis started, so each test's app shuts down with the test."""
    shutdown_lifespans()


def operations(schema: OpenApiSchema) -> Iterator[Operation]:
    """Every operation of the schema (a schema that cannot be read fails here)."""
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        yield result.ok()


def _run(
    operation: Operation,
    mode: GenerationMode,
    check: Callable[[Any], None],
    *,
    examples: int = MAX_EXAMPLES,
) -> None:
    @settings(_SETTINGS, max_examples=examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        check(case)

    run()


def fuzz(schema: OpenApiSchema, *, api_key: str) -> list[str]:
    """Fuzz every operation with valid and invalid requests carrying `api_key`; one line per
    operation and mode whose responses broke a check (empty: all passed)."""
    failures: list[str] = []

    def call(case: Any) -> None:
        case.call_and_validate(headers={KEY_HEADER: api_key}, checks=CHECKS)

    for operation in operations(schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run(operation, mode, call)
            except Unsatisfiable:
                # No parameters and no body: there is nothing to make invalid.
                if mode is GenerationMode.POSITIVE:
                    raise
            except Exception as error:  # every failure is reported, not just the first
                failures.append(f"{operation.label} ({mode.value}): {error}")
            except BaseExceptionGroup as group:  # schemathesis reports its findings as a group
                failures.append(f"{operation.label} ({mode.value}): {group}")
    return failures


def statuses_without_key(schema: OpenApiSchema) -> dict[str, set[int]]:
    """Status codes of valid requests sent without an API key, by operation."""
    seen: dict[str, set[int]] = {}

    def call(case: Any) -> None:
        case.headers = {
            name: value
            for name, value in (case.headers or {}).items()
            if name.lower() != KEY_HEADER.lower()
        }
        response = case.call()
        seen.setdefault(case.operation.label, set()).add(response.status_code)

    for operation in operations(schema):
        _run(operation, GenerationMode.POSITIVE, call, examples=3)
    return seen
