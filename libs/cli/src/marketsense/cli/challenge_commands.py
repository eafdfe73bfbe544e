"""`marketsense challenges list|approve|reject`: champion against challenger (monitoring API)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from marketsense.cli.output import ApiKey, AsJson, console, print_json
from marketsense.cli.perf_commands import DEFAULT_MONITORING_URL, Model, MonitoringUrl, monitoring
from marketsense.monitoring.challenge_schemas import ChallengeRead

ChallengeId = Annotated[int, typer.Argument(min=1, help="The challenge's id (see `list`).")]
Reason = Annotated[
    str, typer.Option("--reason", help="Why; kept on the challenge and in the registry's audit.")
]


def register(app: typer.Typer) -> None:
    """Add the `challenges` command group to the `marketsense` command."""
    challenges_app = typer.Typer(help="Challenger versions against production (monitoring API).")
    app.add_typer(challenges_app, name="challenges")
    challenges_app.command("list")(challenges_list)
    challenges_app.command("approve")(challenges_approve)
    challenges_app.command("reject")(challenges_reject)


def _sharpe(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def challenges_table(challenges: list[ChallengeRead]) -> Table:
    """One row per challenge, newest first."""
    table = Table(
        "id",
        "model",
        "production",
        "challenger",
        "state",
        "days",
        "Sharpe",
        "decided",
        "reason",
        title="Challenges",
    )
    for c in challenges:
        table.add_row(
            str(c.id),
            c.model_name,
            f"v{c.champion_version}",
            f"v{c.challenger_version}",
            c.state,
            f"{c.days} from {c.started_on}" if c.started_on else str(c.days),
            f"{_sharpe(c.challenger_sharpe)} vs {_sharpe(c.champion_sharpe)} "
            f"(margin {c.margin:.2f})",
            f"{c.decided_at:%Y-%m-%d %H:%M} by {c.decided_by}" if c.decided_at else "-",
            c.reason or "-",
        )
    return table


def challenges_list(
    model: Model = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Most challenges listed.")] = 20,
    as_json: AsJson = False,
    url: MonitoringUrl = DEFAULT_MONITORING_URL,
    api_key: ApiKey = None,
) -> None:
    """List challenges, newest first: each challenger's shared days, Sharpe ratios and decision
    (needs a reader key)."""
    with monitoring(url, api_key) as client:
        page = client.challenges(model=model, limit=limit)
    if as_json:
        print_json(page)
        return
    console.print(challenges_table(page.items))


def _decide(challenge_id: int, *, approve: bool, reason: str, url: str, key: str | None) -> None:
    with monitoring(url, key) as client:
        decided = client.decide_challenge(challenge_id, approve=approve, reason=reason)
    console.print(
        f"challenge {decided.id}: {decided.model_name} v{decided.challenger_version} is "
        f"{decided.state}" + (f" ({decided.reason})" if decided.reason else "")
    )


def challenges_approve(
    challenge_id: ChallengeId,
    reason: Reason,
    url: MonitoringUrl = DEFAULT_MONITORING_URL,
    api_key: ApiKey = None,
) -> None:
    """Promote a challenger awaiting approval through the registry's gate (approver key)."""
    _decide(challenge_id, approve=True, reason=reason, url=url, key=api_key)


def challenges_reject(
    challenge_id: ChallengeId,
    reason: Reason,
    url: MonitoringUrl = DEFAULT_MONITORING_URL,
    api_key: ApiKey = None,
) -> None:
    """Reject an undecided challenger: its alias removed, the version archived (approver key)."""
    _decide(challenge_id, approve=False, reason=reason, url=url, key=api_key)
