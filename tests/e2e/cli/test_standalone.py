"""`marketsense standalone` as a newcomer runs it: every service in one process on the embedded
default, a run started with the CLI against it, its predictions read over HTTP, and SIGTERM
ending it with exit 0."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from marketsense.cli.defaults import holdout_set_path
from marketsense.cli.standalone import ADMIN_KEY_FILE
from marketsense.common.auth import KEY_HEADER
from marketsense.common.serve import SERVICES
from tests.cli_support import invoke
from tests.conftest import TEST_AS_OF, eventually
from tests.e2e.processes import Services, free_port
from tests.sentiment_support import linked_copy

pytestmark = pytest.mark.e2e

SYMBOLS = ["AAPL", "MSFT", "NVDA"]
COMMAND = str(Path(sys.executable).with_name("marketsense"))


@pytest.fixture
def home(tmp_path: Path, sentiment_model_dir: Path, predictor_dir: Path) -> Path:
    """A home whose models are built (building them is bootstrap's to test), not registered."""
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    linked_copy(sentiment_model_dir, home / "models" / "sentiment")  # 144 MB: hard links
    shutil.copytree(predictor_dir, home / "models" / "baseline-predictor")
    shutil.copy(
        holdout_set_path(predictor_dir), holdout_set_path(home / "models" / "baseline-predictor")
    )
    return home


def _environment() -> dict[str, str]:
    """This environment without any setting that would move the standalone off its default."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MARKETSENSE_")} | {
        k: v for k, v in os.environ.items() if k.startswith("MARKETSENSE_TEST_")
    }


async def test_a_run_started_with_the_cli_ends_and_its_predictions_are_served(
    home: Path, tmp_path: Path
) -> None:
    ports = {service: free_port() for service in SERVICES}
    log = tmp_path / "standalone.log"
    process = _standalone(home, ports, log)
    services = Services({s: process for s in SERVICES}, ports, {s: log for s in SERVICES})
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await services.wait_ready(client)
            key = (home / ADMIN_KEY_FILE).read_text().strip()
            assert key in log.read_text(), "the admin key is printed the first time"
            # The CLI in this process: a second interpreter would only add its start-up time.
            started = await asyncio.to_thread(
                invoke,
                *("run", "start", "--symbols", ",".join(SYMBOLS), "--as-of", str(TEST_AS_OF)),
                *("--url", services.url("orchestrator")),
                key=key,
            )
            assert started.exit_code == 0, started.stderr
            run_id = started.stdout.strip()
            client.headers[KEY_HEADER] = key
            run = await _finished(client, f"{services.url('orchestrator')}/v1/runs/{run_id}")
            assert run["state"] == "SUCCESS", run
            for symbol in SYMBOLS:
                answer = await client.get(
                    f"{services.url('prediction')}/v1/predictions/{symbol}/latest"
                )
                assert answer.status_code == 200, answer.text
                prediction = answer.json()
                assert (prediction["symbol"], prediction["run_id"]) == (symbol, run_id)
                assert prediction["as_of"] == TEST_AS_OF.isoformat()
                assert 0 <= prediction["prob_up"] <= 1
            # Each port serves its own service's routes, not the whole pipeline's.
            elsewhere = await client.get(f"{services.url('registry')}/v1/runs/{run_id}")
            assert elsewhere.status_code == 404
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]


def _standalone(home: Path, ports: dict[str, int], log: Path) -> subprocess.Popen[bytes]:
    """`marketsense standalone` on these ports under `home`, its output in `log`."""
    flags = [f"--port={service}={port}" for service, port in ports.items()]
    with log.open("wb") as out:
        return subprocess.Popen(
            [COMMAND, "standalone", "--home", str(home), *flags],
            env=_environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _finished(client: httpx.AsyncClient, url: str) -> dict[str, object]:
    run: dict[str, object] = {}

    async def ended() -> bool:
        nonlocal run
        run = (await client.get(url)).json()
        return run["state"] not in {"PENDING", "RUNNING"}

    await eventually(ended, timeout=120, interval=0.25)
    return run
