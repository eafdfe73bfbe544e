"""Fuzzing a service's OpenAPI in-process with schemathesis' engine: every phase (examples,
coverage, fuzzing, stateful), bounded in examples, steps and time, from a printed seed."""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis.errors import HypothesisWarning
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import StopReason, events, from_schema
from schemathesis.engine.recorder import ScenarioRecorder
from schemathesis.engine.run import TESTING_PHASES
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.schemas import OpenApiSchema

from marketsense.common.auth import KEY_HEADER

SEED = int(os.environ.get("MARKETSENSE_FUZZ_SEED", "1313"))
"""Seed of every run; a failure reproduces with the same value in `MARKETSENSE_FUZZ_SEED`."""

MAX_EXAMPLES = int(os.environ.get("MARKETSENSE_FUZZ_EXAMPLES", "8"))
"""Generated requests per operation and phase (the coverage phase adds its own edge cases);
raise it in `MARKETSENSE_FUZZ_EXAMPLES` for a deeper run."""

MAX_STEPS = 12
"""Most requests in one stateful scenario: a chain along the links between operations that
schemathesis infers from the schema (an id one answer returns, used in the next request)."""

MAX_SECONDS = 120
"""Longest one run (one service, one role) may take; it takes a few seconds. Not schemathesis'
`max-time`, which would keep fuzzing until the time is up."""

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Routes that answer without an API key: probes and Prometheus."""

_CONFIG: dict[str, Any] = {
    "generation": {
        "max-examples": MAX_EXAMPLES,
        # Unknown query parameters are ignored by design, not an error to provoke.
        "allow-extra-parameters": False,
        # The key is set per role below; a generated one would only ever be refused.
        "with-security-parameters": False,
        # Nothing stored between runs: the seed alone decides the requests.
        "database": "none",
        # Shrinking a failure can take minutes; the failing request is reported as generated.
        "no-shrink": True,
    },
    # Nothing learnt from earlier runs either (nor written to the working directory).
    "cache": {"enabled": False},
    "phases": {"stateful": {"max-steps": MAX_STEPS}},
    "checks": {
        # Schema-valid requests may still break rules a schema cannot express (a manifest that
        # is not one, a symbol listed twice); `key_rule` and the status checks judge them instead.
        "positive_data_acceptance": {"enabled": False},
    },
}


@schemathesis.check
def key_rule(ctx: Any, response: Any, case: Any) -> bool | None:
    """Without a key every route but the probes and metrics answers 401, whatever else is wrong
    with the request; with a valid key none does."""
    sent = {name.lower() for name in response.request.headers}
    has_key = KEY_HEADER.lower() in sent
    if case.operation.path in OPEN_PATHS:
        if response.status_code == 401:
            raise AssertionError(f"{case.operation.path} is open but answered 401")
        return None
    if case.method.upper() != case.operation.method.upper():
        # A method the path does not have: 405 before any key is looked at reveals nothing.
        return None
    if not has_key and response.status_code != 401:
        raise AssertionError(f"request without a key answered {response.status_code}, not 401")
    if has_key and response.status_code == 401:
        raise AssertionError("request with a valid key answered 401")
    return None


def load_schema(app: FastAPI, *, api_key: str | None) -> OpenApiSchema:
    """The app's OpenAPI document as served, set to send `api_key` (none: no key) with every
    request; schemathesis starts the app's lifespan for it."""
    config = SchemathesisConfig.from_dict(
        {
            **_CONFIG,
            "seed": SEED,
            "headers": {} if api_key is None else {KEY_HEADER: api_key},
        }
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


def stop_apps() -> None:
    """End the lifespans schemathesis started, so each test's app shuts down with the test."""
    shutdown_lifespans()


@dataclass
class Outcome:
    """What one run did: requests per phase, failures by kind, and why it stopped."""

    cases: Counter[str] = field(default_factory=Counter)
    skipped: dict[str, str] = field(default_factory=dict)
    """Testing phases that did not run, and why (stateful: the schema has no links to follow)."""
    failures: dict[str, list[str]] = field(default_factory=dict)
    """Failing requests by kind (phase, operation, check, status), each with how to replay it."""
    stop_reason: StopReason | None = None

    def add(self, kind: str, example: str = "") -> None:
        """Count one failure of `kind`."""
        self.failures.setdefault(kind, []).append(example)

    def report(self) -> list[str]:
        """One paragraph per kind of failure: how often, and its first request."""
        return [f"{len(examples)}x {kind}{examples[0]}" for kind, examples in self.failures.items()]


def _record_failures(outcome: Outcome, phase: str, recorder: ScenarioRecorder) -> None:
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            failure = check.failure_info.failure
            # A check may send requests of its own (the same one without a key, say).
            failing_id = failure.case_id or case_id
            case = recorder.cases[failing_id].value
            response = recorder.find_response(case_id=failing_id)
            status = "no response" if response is None else response.status_code
            answer = "" if response is None else response.content[:200].decode(errors="replace")
            outcome.add(
                f"[{phase}] {recorder.label}: {check.name}: {failure.title} ({status})",
                f"\n  {case.method} {case.formatted_path} query={case.query}"
                f" body={case.body!r:.200}"
                f"\n  why: {failure.message}\n  answer: {answer}"
                f"\n  reproduce: {check.failure_info.code_sample}",
            )


def run(schema: OpenApiSchema) -> Outcome:
    """Every phase over every operation of `schema`, with every check."""
    outcome = Outcome()
    with warnings.catch_warnings():
        # Large generated bodies are fine to send; only their printed form would be slow.
        warnings.filterwarnings("ignore", "Generating overly large repr", HypothesisWarning)
        for event in from_schema(schema).execute():
            _record(outcome, event)
    return outcome


def _record(outcome: Outcome, event: events.EngineEvent) -> None:
    """Count the cases and failures one engine event reports."""
    if isinstance(event, events.ScenarioFinished):
        outcome.cases[event.phase.value] += len(event.recorder.cases)
        _record_failures(outcome, event.phase.value, event.recorder)
    elif isinstance(event, events.PhaseFinished) and event.phase.name in TESTING_PHASES:
        if event.phase.skip_reason is not None:
            outcome.skipped[event.phase.name.value] = event.phase.skip_reason.value
    elif isinstance(event, events.NonFatalError):
        outcome.add(f"[{event.phase}] {event.label}: error: {event.value!r}")
    elif isinstance(event, events.FatalError):
        outcome.add(f"fatal: {event.exception!r}")
    elif isinstance(event, events.EngineFinished):
        outcome.stop_reason = event.stop_reason
        for failure in event.failures:
            outcome.add(f"after run: {failure.title}")
