"""Champion against challenger: after each finished run, measure the version the `challenger`
alias names against production on the outcome days both predicted, and promote it through the
registry's gate, reject and archive it, or ask an approver.

Monitoring reads the aliases from the database but changes the registry only through its API,
which gates, audits and announces each change itself."""

from __future__ import annotations

import logging
from collections.abc import Callable

from marketsense.common.alerts import Notifier
from marketsense.common.api_client import ApiError
from marketsense.common.db.models import Challenge
from marketsense.common.registry_calls import (
    InProcessTransport,
    RegistryAccessSettings,
    RegistryCalls,
)
from marketsense.common.runtime import Runtime
from marketsense.monitoring.alerts import challenge_alert
from marketsense.monitoring.challenge_decision import ChallengeFigures, Verdict, judge_challenge
from marketsense.monitoring.challenge_store import (
    CHALLENGER,
    OPEN,
    PRODUCTION,
    ChallengeState,
    alias_versions,
    challenge_by_id,
    now,
    open_challenge,
    save_challenge,
    shadowed_as_of,
)
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.performance_reads import daily_frame

log = logging.getLogger(__name__)

AUTOMATIC = "monitoring"
"""`decided_by` of a decision monitoring made by itself."""

NO_REGISTRY = (
    "no registry to call: set MARKETSENSE_REGISTRY_URL to the registry's base URL (and "
    "MARKETSENSE_REGISTRY_API_KEY to an approver's key)"
)


class ChallengeNotFound(LookupError):
    """No challenge has the id asked for."""


class ChallengeConflict(Exception):
    """The challenge's state does not allow the request."""


class RegistryUnavailable(Exception):
    """The registry cannot be called now (unset, unreachable or failing); nothing changed."""


def transient(error: ApiError) -> bool:
    """Whether a registry failure passes: no answer, or a server error."""
    return error.status is None or error.status >= 500


class LazyRegistry:
    """The registry's API client, built on first use from the settings (or the registry in this
    process); None while neither a URL nor an in-process registry exists."""

    def __init__(
        self, settings: RegistryAccessSettings, transport: InProcessTransport | None = None
    ):
        self.settings = settings
        self.transport = transport
        self._calls: RegistryCalls | None = None

    def __call__(self) -> RegistryCalls | None:
        """The client, or None when there is no registry to call."""
        if self._calls is None:
            try:
                self._calls = RegistryCalls.from_settings(self.settings, in_process=self.transport)
            except ValueError:
                return None
        return self._calls

    async def close(self) -> None:
        """Close the client's connections, if it was built."""
        if self._calls is not None:
            await self._calls.aclose()


class Challenges:
    """Opens, measures and decides the monitored model's challenges."""

    def __init__(
        self,
        runtime: Runtime,
        settings: MonitoringSettings,
        alerter: Notifier,
        registry: Callable[[], RegistryCalls | None],
    ):
        self.runtime = runtime
        self.settings = settings
        self.alerter = alerter
        self.registry = registry
        self.model = settings.monitored_model

    async def after_run(self) -> Challenge | None:
        """Open or advance the challenge of the version the challenger alias names, when it is
        not production; the challenge, or None without one."""
        aliases = await alias_versions(self.runtime, self.model)
        challenger, champion = aliases.get(CHALLENGER), aliases.get(PRODUCTION)
        if challenger is None or champion is None or challenger == champion:
            return None
        challenge = await open_challenge(
            self.runtime,
            model=self.model,
            champion=champion,
            challenger=challenger,
            margin=self.settings.challenge_margin,
        )
        if challenge.state != ChallengeState.SHADOWING:
            return challenge
        try:
            return await self._measure(challenge, champion)
        except RegistryUnavailable as exc:
            log.warning(
                "challenge %d of %s version %s stays SHADOWING and is tried again after the "
                "next run: %s",
                challenge.id,
                self.model,
                challenger,
                exc,
            )
            return await challenge_by_id(self.runtime, challenge.id)

    async def _figures(self, challenge: Challenge) -> ChallengeFigures:
        champion = await daily_frame(
            self.runtime, model=challenge.model_name, version=challenge.champion_version
        )
        challenger = await daily_frame(
            self.runtime, model=challenge.model_name, version=challenge.challenger_version
        )
        return judge_challenge(
            champion, challenger, needed=self.settings.challenge_days, margin=challenge.margin
        )

    async def _measure(self, challenge: Challenge, champion: str) -> Challenge | None:
        challenge.champion_version = champion  # production may have moved since it opened
        figures = await self._figures(challenge)
        measured = await save_challenge(
            self.runtime,
            challenge,
            only_if=(ChallengeState.SHADOWING,),
            champion_version=champion,
            days=figures.days,
            started_on=figures.started_on,
            champion_sharpe=figures.champion_sharpe,
            challenger_sharpe=figures.challenger_sharpe,
            reason=None if figures.verdict is Verdict.PENDING else figures.reason,
        )
        if measured is None or figures.verdict is Verdict.PENDING:
            return measured
        if figures.verdict is Verdict.LOSE:
            return await self.reject(measured, reason=figures.reason, actor=AUTOMATIC)
        if self.settings.promotion_mode == "approval":
            waiting = await save_challenge(
                self.runtime,
                measured,
                only_if=(ChallengeState.SHADOWING,),
                state=ChallengeState.AWAITING_APPROVAL.value,
            )
            if waiting is not None:
                await self.alerter.notify(challenge_alert(waiting))
            return waiting
        return await self.promote(measured, reason=figures.reason, actor=AUTOMATIC)

    def _calls(self) -> RegistryCalls:
        calls = self.registry()
        if calls is None:
            raise RegistryUnavailable(NO_REGISTRY)
        return calls

    async def promote(self, challenge: Challenge, *, reason: str, actor: str) -> Challenge | None:
        """Make the challenger production through the registry's gate, measured on the days it
        was shadowed; a gate's refusal rejects it. RegistryUnavailable leaves it as it was."""
        calls = self._calls()
        name, version = challenge.model_name, int(challenge.challenger_version)
        figures = await self._figures(challenge)
        try:
            await self._gate_on_shadowed_days(calls, challenge, figures)
            await calls.move_alias(name, PRODUCTION, version=version, reason=reason)
        except ApiError as exc:
            if transient(exc):
                raise RegistryUnavailable(str(exc)) from exc
            if exc.status != 409:
                raise RegistryUnavailable(
                    f"the registry refused the promotion ({exc}); check "
                    "MARKETSENSE_REGISTRY_API_KEY holds the approver role"
                ) from exc
            refusal = f"the registry's gate refused the promotion: {exc.detail}"
            return await self.reject(challenge, reason=refusal, actor=actor)
        await self._drop_alias(calls, challenge, reason=f"promoted to production: {reason}")
        promoted = await save_challenge(
            self.runtime,
            challenge,
            state=ChallengeState.PROMOTED.value,
            decided_at=now(),
            decided_by=actor,
            reason=reason,
        )
        if promoted is not None:
            log.info("%s version %d promoted to production: %s", name, version, reason)
            await self.alerter.notify(challenge_alert(promoted))
        return promoted

    async def _gate_on_shadowed_days(
        self, calls: RegistryCalls, challenge: Challenge, figures: ChallengeFigures
    ) -> None:
        """Make the days the challenger was shadowed (neither version trained on them) the
        registry's active predictor set, so its gate compares both versions there."""
        if not figures.compared:
            return
        start, end = await shadowed_as_of(
            self.runtime,
            model=challenge.model_name,
            version=challenge.challenger_version,
            outcome_days=figures.compared,
        )
        try:
            await calls.predictor_set_from_runs(start=start, end=end)
        except ApiError as exc:
            if transient(exc):
                raise
            log.warning(
                "the registry built no evaluation set from %s..%s (%s); its gate measures "
                "on the active set",
                start,
                end,
                exc.detail,
            )

    async def reject(self, challenge: Challenge, *, reason: str, actor: str) -> Challenge | None:
        """Remove the challenger alias, archive the version with the reason, record REJECTED.
        RegistryUnavailable leaves it as it was."""
        calls = self._calls()
        name, version = challenge.model_name, int(challenge.challenger_version)
        await self._drop_alias(calls, challenge, reason=f"rejected: {reason}")
        try:
            await calls.archive(name, version, reason=f"challenge {challenge.id}: {reason}")
        except ApiError as exc:
            if transient(exc):
                raise RegistryUnavailable(str(exc)) from exc
            log.warning("%s version %d was not archived: %s", name, version, exc)
        rejected = await save_challenge(
            self.runtime,
            challenge,
            state=ChallengeState.REJECTED.value,
            decided_at=now(),
            decided_by=actor,
            reason=reason,
        )
        if rejected is not None:
            log.info("%s version %d rejected: %s", name, version, reason)
            await self.alerter.notify(challenge_alert(rejected))
        return rejected

    async def _drop_alias(self, calls: RegistryCalls, challenge: Challenge, *, reason: str) -> None:
        """Delete the challenger alias if it still names this challenge's version."""
        try:
            held = await calls.alias(challenge.model_name, CHALLENGER)
            if held is not None and str(held.get("version")) == challenge.challenger_version:
                await calls.delete_alias(challenge.model_name, CHALLENGER, reason=reason)
        except ApiError as exc:
            if transient(exc):
                raise RegistryUnavailable(str(exc)) from exc
            log.warning("the challenger alias of %s stays: %s", challenge.model_name, exc)

    async def decide(
        self, challenge_id: int, *, approve: bool, actor: str, reason: str
    ) -> Challenge:
        """An approver's yes (promotion through the gate) or no (rejection) on an undecided
        challenge; ChallengeNotFound, ChallengeConflict or RegistryUnavailable otherwise."""
        challenge = await challenge_by_id(self.runtime, challenge_id)
        if challenge is None:
            raise ChallengeNotFound(f"no challenge {challenge_id}")
        allowed = (ChallengeState.AWAITING_APPROVAL.value,) if approve else OPEN
        if challenge.state not in allowed:
            raise ChallengeConflict(
                f"challenge {challenge_id} is {challenge.state}; only "
                f"{' or '.join(allowed)} challenges can be {'approved' if approve else 'rejected'}"
            )
        said = f"{'approved' if approve else 'rejected'} by {actor}: {reason}"
        if approve:
            figures = challenge.reason or "figures not recorded"
            done = await self.promote(challenge, reason=f"{said} ({figures})", actor=actor)
        else:
            done = await self.reject(challenge, reason=said, actor=actor)
        if done is None:
            raise ChallengeConflict(f"challenge {challenge_id} was decided meanwhile")
        return done
