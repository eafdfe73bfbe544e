"""Dead-letter routes: readers list the index, publishers replay records to their topics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from marketsense.common.api_models import (
    AUTH_ERRORS,
    ID_CURSOR_PATTERN,
    UNREADABLE_BODY,
    error_response,
    row_id,
    validation_error,
)
from marketsense.orchestrator.dead_letters.flows import (
    NoSuchDeadLetter,
    NothingToReplay,
    replay_dead_letters,
)
from marketsense.orchestrator.dead_letters.schemas import (
    DeadLetterPage,
    DeadLetterRead,
    DeadLetterReplay,
    ReplayRead,
    SkippedDeadLetter,
)
from marketsense.orchestrator.dead_letters.service import list_dead_letters
from marketsense.orchestrator.deps import PublisherKey, ReaderKey, RuntimeDep, SessionDep

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"], responses=AUTH_ERRORS)


@router.get(
    "",
    response_model=DeadLetterPage,
    summary="Dead letters, newest first, optionally of one run or topic.",
    responses=error_response(422, "A bad filter or cursor."),
)
async def get_dead_letters(
    _key: ReaderKey,
    session: SessionDep,
    run_id: Annotated[str | None, Query(max_length=36, description="Only this run's.")] = None,
    topic: Annotated[
        str | None, Query(max_length=255, description="Only those that failed on this topic.")
    ] = None,
    replayed: Annotated[
        bool | None, Query(description="Only replayed (true) or never replayed (false) ones.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Dead letters per page.")] = 100,
    cursor: Annotated[
        str | None,
        Query(
            pattern=ID_CURSOR_PATTERN,
            max_length=19,
            description="`next_cursor` of the previous page, unchanged (a dead letter's id).",
        ),
    ] = None,
) -> DeadLetterPage:
    try:
        before_id = None if cursor is None else row_id(cursor)
    except ValueError as exc:
        raise validation_error(("query", "cursor"), str(exc)) from exc
    rows = await list_dead_letters(
        session,
        run_id=run_id,
        topic=topic,
        replayed=replayed,
        limit=limit,
        before_id=before_id,
    )
    return DeadLetterPage(
        items=[DeadLetterRead.model_validate(row) for row in rows],
        next_cursor=str(rows[-1].id) if len(rows) == limit else None,
    )


@router.post(
    "/replay",
    response_model=ReplayRead,
    summary="Republish dead letters unchanged to their original topics.",
    description=(
        "Selects records by `ids` or by `run_id`: exactly one of the two. A replayed stage "
        "input re-opens its FAILED task (and its PARTIAL or FAILED run), so the stage runs "
        "again. Records replayed "
        "before are skipped unless `force` is true."
    ),
    responses={
        **UNREADABLE_BODY,
        **error_response(404, "Some ids are not dead letters."),
        **error_response(409, "Nothing left to replay."),
        **error_response(422, "Neither or both of ids and run_id, or no reason."),
    },
)
async def post_replay(
    body: DeadLetterReplay, principal: PublisherKey, runtime: RuntimeDep
) -> ReplayRead:
    try:
        result = await replay_dead_letters(
            runtime=runtime,
            ids=body.ids,
            run_id=body.run_id,
            actor=principal.name,
            reason=body.reason,
            force=body.force,
        )
    except NoSuchDeadLetter as exc:
        raise HTTPException(404, str(exc)) from exc
    except NothingToReplay as exc:
        raise HTTPException(409, str(exc)) from exc
    return ReplayRead(
        replayed=[DeadLetterRead.model_validate(row) for row in result.replayed],
        skipped=[SkippedDeadLetter(id=id_, reason=why) for id_, why in result.skipped],
    )
