"""The feedback loop end to end on Kafka, PostgreSQL and S3, every service its own process and two
prediction replicas: the text signal flips, monitoring alerts, the retraining worker trains and
registers a challenger, the challenge promotes it, every replica serves it, and the book
recovers."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from rich.console import Console

from marketsense.cli.registration import ensure_registered
from marketsense.cli.story import StoryApis, run_story
from marketsense.cli.story_figures import SPANS
from marketsense.cli.story_outcome import story_outcome
from marketsense.cli.story_plan import story_plan, story_sessions
from marketsense.cli.story_reads import every_item, serves
from marketsense.cli.story_summary import parse_instant, summary_table
from marketsense.common.auth import KEY_HEADER, Role
from marketsense.common.calendar import exchange_calendar
from marketsense.common.db.engine import Database
from marketsense.common.events import ModelPromoted, parse_event
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.models.files import MANIFEST_FILE
from marketsense.registry.config import RegistrySettings
from tests.backends import as_environment, real_servers
from tests.conftest import infra
from tests.e2e.processes import Services, running_services
from tests.model_registry_rows import new_api_key

# The loop's own part takes about 4 minutes; the time limit leaves room for building the session's
# models when this test is the first to need them.
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(900)]

SYMBOLS = [f"L{i:02d}" for i in range(20)]
MARKET_SEED = 8114
"""The simulated market's seed."""
LAST_SESSION = dt.date(2026, 7, 29)
"""The loop's 140 sessions end here."""
SESSIONS, OPENING, FLIP = 140, 70, 75
"""Sessions in all; of the opening backfill (69 outcome days, past the decay policy's 63); the
session after which the texts' lead flips."""
PIPELINE = ("orchestrator", "ingestion", "processing", "monitoring", "retraining")

LOOP = {
    "retraining_trainer": "logistic",
    "retraining_min_days": 16,
    "challenge_days": 5,
    "challenge_margin": 0.5,
    "promotion_mode": "auto",
    "decay_confidence": 0.95,
    "decay_min_observations": 72,
    "decay_volatility_days": 72,
    "log_level": "WARNING",
}
"""Shrunk for 20 symbols and a random market: a challenger trains on 16 days from the decayed
window's start (320 rows, past the trainers' least of 300) and shadows production for 5 outcome
days; the decay policy judges from outcome day 72 on, three sessions before the flip, so a false
alarm of a lucky market cannot start the loop long before it."""


def _environment(
    settings: dict[str, str], tmp_path: Path, *, seed: int, flip: dt.date, model: str
) -> dict[str, str]:
    return as_environment(
        settings
        | LOOP
        | {
            "home": tmp_path / "home",
            "market_seed": seed,
            "regime_change": flip,
            "regime_signal_factor": -1.0,
            "predictor_model": model,
            "monitored_model": model,
            # Only the registry brings a predictor version: no local fallback.
            "predictor_path": tmp_path / "no-local-model",
        }
    )


@contextlib.contextmanager
def _deployment(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Services, Services]]:
    """The pipeline's services (a prediction replica among them) and a second replica."""
    (tmp_path / "second").mkdir()
    with (
        running_services((*PIPELINE, "prediction"), env, tmp_path) as services,
        running_services(("prediction",), env, tmp_path / "second") as replica,
    ):
        yield services, replica


@contextlib.asynccontextmanager
async def _apis(services: Services, replica: Services, key: str) -> AsyncIterator[StoryApis]:
    headers = {KEY_HEADER: key}
    async with contextlib.AsyncExitStack() as stack:

        async def client(url: str) -> httpx.AsyncClient:
            made = httpx.AsyncClient(base_url=url, headers=headers, timeout=60)
            return await stack.enter_async_context(made)

        yield StoryApis(
            orchestrator=await client(services.url("orchestrator")),
            prediction=await client(services.url("prediction")),
            monitoring=await client(services.url("monitoring")),
            registry=await client(services.url("registry")),
            retraining=await client(services.url("retraining")),
            replicas=(
                await client(services.url("prediction")),
                await client(replica.url("prediction")),
            ),
        )


async def _promotions(prefix: str, model: str) -> list[tuple[dt.datetime, str]]:
    """(occurred_at, version) of every `model.promoted` of the model's production."""
    topic = f"{prefix}{ModelPromoted.topic}"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=infra("MARKETSENSE_TEST_KAFKA"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=5000)
    finally:
        await consumer.stop()
    found = []
    for records in batch.values():
        for record in records:
            envelope, payload = parse_event(record.value or b"")
            if (
                isinstance(payload, ModelPromoted)
                and payload.model_name == model
                and payload.alias == "production"
            ):
                found.append((envelope.occurred_at, payload.version))
    return found


async def _register(settings: dict[str, str], predictor_dir: Path, sentiment_dir: Path) -> str:
    """The models as production v1, as the embedded default registers them: the predictor's
    holdout rows its evaluation set."""
    registry = RegistrySettings.model_validate(settings)
    models = [("sentiment", sentiment_dir), ("predictor", predictor_dir)]
    await ensure_registered(registry, models, Console(quiet=True))
    name: str = json.loads((predictor_dir / MANIFEST_FILE).read_text())["name"]
    return name


def _first(items: list[dict[str, Any]], field: str, **equal: Any) -> dt.datetime:
    """The earliest `field` instant among items whose fields equal `equal`."""
    chosen = [i for i in items if all(str(i.get(k)) == str(v) for k, v in equal.items())]
    assert chosen, f"nothing with {equal} in {items}"
    return min(parse_instant(i[field]) for i in chosen)


async def test_the_loop_alerts_retrains_promotes_serves_everywhere_and_recovers(
    pg_database: Database,
    fresh_pg_database_url: str,
    tmp_path: Path,
    prefix: str,
    predictor_dir: Path,
    sentiment_model_dir: Path,
) -> None:
    # One market, so the scenario (when the alert comes, whether the first challenger wins) is the
    # same every run; the processes' timing is what varies. Another market: MARKETSENSE_E2E_MARKET.
    seed = int(os.environ.get("MARKETSENSE_E2E_MARKET", MARKET_SEED))
    print(f"market seed {seed}")
    calendar = exchange_calendar()
    days = calendar.sessions(LAST_SESSION - dt.timedelta(days=250), LAST_SESSION)
    plan = story_plan(
        story_sessions(LAST_SESSION, SESSIONS, days),
        first_backfill=OPENING,
        flip=FLIP,
        max_daily_after_flip=60,
        serving_margin=2,
    )
    settings = real_servers(
        database_url=fresh_pg_database_url, prefix=prefix, bucket="marketsense-e2e"
    )
    model = await _register(settings, predictor_dir, sentiment_model_dir)
    approver = await new_api_key(pg_database, role=Role.APPROVER)
    env = _environment(settings, tmp_path, seed=seed, flip=plan.flip_day, model=model)
    env["MARKETSENSE_SENTIMENT_MODEL_PATH"] = str(sentiment_model_dir)
    env["MARKETSENSE_REGISTRY_API_KEY"] = approver
    with running_services(("registry",), env, tmp_path) as registry:
        env["MARKETSENSE_REGISTRY_URL"] = registry.url("registry")
        with _deployment(env, tmp_path) as (services, replica):
            services.ports["registry"] = registry.ports["registry"]
            async with _apis(services, replica, approver) as apis:
                for each in (services, replica, registry):
                    await each.wait_ready(apis.orchestrator)
                log = await run_story(apis, plan, SYMBOLS, model=model, console=Console())
                outcome = await story_outcome(
                    apis,
                    plan,
                    log,
                    symbols=SYMBOLS,
                    market=SimulatedMarket(
                        seed, regime_change=plan.flip_day, regime_signal_factor=-1.0
                    ),
                    model=model,
                    seconds=0.0,
                )
                new = outcome.figures.milestones.new_version
                assert new is not None, "no retrain ended DONE"
                order = await _order_of_events(apis, plan.flip_day, model, prefix, new)
                readyz = [(await r.get("/readyz")).json() for r in apis.replicas]
    Console(width=150).print(summary_table(outcome.figures, plan))
    print(json.dumps({k: v.isoformat() for k, v in order.items()}, indent=1))
    assert all(serves(body, model, new) for body in readyz), readyz
    steps = list(order)
    assert [order[s] for s in steps] == sorted(order[s] for s in steps), order
    spans = {s.span: s for s in outcome.figures.spans}
    between, after = spans[SPANS[1]].production, spans[SPANS[2]].production
    assert between is not None
    assert after is not None
    assert after > between


async def _order_of_events(
    apis: StoryApis, flip_day: dt.date, model: str, prefix: str, version: str
) -> dict[str, dt.datetime]:
    """When each step of the loop that brought `version` happened, in the order it must have:
    the first decay alert after the flip, the retrain request, the new version, the challenger
    alias, the promotion (alias history) and `model.promoted`."""
    alerts = await every_item(apis.monitoring, "/v1/decay-alerts", {"model": model})
    after_flip = [a for a in alerts if dt.date.fromisoformat(a["day"]) > flip_day]
    assert after_flip, f"no decay alert after the flip: {alerts}"
    retrains = await every_item(apis.retraining, "/v1/retrains")
    versions = await every_item(apis.registry, f"/v1/models/{model}/versions")
    challenger = await every_item(apis.registry, f"/v1/models/{model}/aliases/challenger/history")
    production = await every_item(apis.registry, f"/v1/models/{model}/aliases/production/history")
    promoted = [at for at, v in await _promotions(prefix, model) if v == version]
    assert promoted, f"no model.promoted of v{version}"
    return {
        "decay alert": min(parse_instant(a["created_at"]) for a in after_flip),
        "retrain requested": _first(retrains, "requested_at", version=version),
        "new version": _first(versions, "created_at", version=version),
        "challenger set": _first(challenger, "at", to_version=version),
        "promoted": _first(production, "at", to_version=version),
        "model.promoted": min(promoted),
    }
