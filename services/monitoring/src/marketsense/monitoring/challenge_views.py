"""Champion-against-challenger routes: the challenges (reader) and an approver's yes or no."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from marketsense.common.api_models import AUTH_ERRORS, UNREADABLE_BODY, error_response
from marketsense.monitoring.challenge_schemas import ChallengeDecision, ChallengePage, ChallengeRead
from marketsense.monitoring.challenge_store import challenge_by_id, list_challenges
from marketsense.monitoring.challenges import (
    ChallengeConflict,
    ChallengeNotFound,
    RegistryUnavailable,
)
from marketsense.monitoring.deps import ApproverKey, ChallengesDep, ReaderKey, RuntimeDep

# Included in the monitoring router, whose prefix is /v1.
router = APIRouter(tags=["challenges"], responses=AUTH_ERRORS)

ChallengeId = Annotated[
    int, Path(ge=1, le=2**63 - 1, description="The challenge's id.", examples=[3])
]
_NOT_FOUND = error_response(404, "No challenge has this id.")
_DECISION_ERRORS = {
    **UNREADABLE_BODY,
    **_NOT_FOUND,
    **error_response(409, "The challenge is decided already (or not awaiting approval)."),
    **error_response(422, "Invalid request; `detail` lists each bad field."),
    **error_response(
        503, "The registry cannot be called now; nothing changed, try again (`detail` says why)."
    ),
}


@router.get(
    "/challenges",
    response_model=ChallengePage,
    summary="Challenges of challenger versions against production, newest first.",
    responses={**error_response(422, "Invalid request; `detail` lists each bad field.")},
)
async def get_challenges(
    _key: ReaderKey,
    runtime: RuntimeDep,
    model: Annotated[
        str | None, Query(min_length=1, max_length=128, description="Only this model's.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Most challenges listed.")] = 100,
) -> ChallengePage:
    rows = await list_challenges(runtime, model=model, limit=limit)
    return ChallengePage(items=[ChallengeRead.model_validate(row) for row in rows])


@router.get(
    "/challenges/{challenge_id}",
    response_model=ChallengeRead,
    summary="One challenge.",
    responses={**_NOT_FOUND, **error_response(422, "The id is not a positive integer.")},
)
async def get_challenge(
    challenge_id: ChallengeId, _key: ReaderKey, runtime: RuntimeDep
) -> ChallengeRead:
    row = await challenge_by_id(runtime, challenge_id)
    if row is None:
        raise HTTPException(404, f"no challenge {challenge_id}")
    return ChallengeRead.model_validate(row)


async def _decide(
    challenges: ChallengesDep, challenge_id: int, *, approve: bool, actor: str, reason: str
) -> ChallengeRead:
    try:
        row = await challenges.decide(challenge_id, approve=approve, actor=actor, reason=reason)
    except ChallengeNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except ChallengeConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except RegistryUnavailable as exc:
        raise HTTPException(503, f"the registry cannot be called now: {exc}") from exc
    return ChallengeRead.model_validate(row)


@router.post(
    "/challenges/{challenge_id}/approve",
    response_model=ChallengeRead,
    summary="Promote a challenger that awaits approval, through the registry's gate (approver).",
    description=(
        "The registry measures both versions on the days the challenger was shadowed and moves "
        "`production` only if its gate agrees; a refusal rejects and archives the challenger, "
        "and the answer's `state` says which happened."
    ),
    responses=_DECISION_ERRORS,
)
async def approve_challenge(
    challenge_id: ChallengeId,
    body: ChallengeDecision,
    principal: ApproverKey,
    challenges: ChallengesDep,
) -> ChallengeRead:
    return await _decide(
        challenges, challenge_id, approve=True, actor=principal.name, reason=body.reason
    )


@router.post(
    "/challenges/{challenge_id}/reject",
    response_model=ChallengeRead,
    summary="Reject an undecided challenger: its alias removed, the version archived (approver).",
    responses=_DECISION_ERRORS,
)
async def reject_challenge(
    challenge_id: ChallengeId,
    body: ChallengeDecision,
    principal: ApproverKey,
    challenges: ChallengesDep,
) -> ChallengeRead:
    return await _decide(
        challenges, challenge_id, approve=False, actor=principal.name, reason=body.reason
    )
