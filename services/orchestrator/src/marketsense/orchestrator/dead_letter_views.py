"""Dead-letter routes: readers list the index, publishers replay records to their topics."""

# No `from __future__ import annotations` here: FastAPI reads the `Annotated` dependency aliases
# that `dead_letter_router()` defines locally, which string annotations would leave unresolvable.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from marketsense.common.api_models import ErrorRead
from marketsense.common.auth import KEY_HEADER, Principal, Role, require
from marketsense.common.db.models import DeadLetter
from marketsense.common.runtime import Runtime
from marketsense.orchestrator.dead_letter_schemas import (
    DeadLetterPage,
    DeadLetterRead,
    DeadLetterReplay,
    ReplayRead,
    SkippedDeadLetter,
)
from marketsense.orchestrator.dead_letters import (
    NoSuchDeadLetter,
    NothingToReplay,
    list_dead_letters,
    replay_dead_letters,
)

VALUE_PREVIEW_CHARS = 4000

_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorRead, "description": f"No `{KEY_HEADER}` header, or an unknown key."},
    403: {"model": ErrorRead, "description": "The key's role may not do this."},
}


def dead_letter_router(runtime: Runtime) -> APIRouter:
    """Routes for listing and replaying dead letters."""
    api = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"], responses=_AUTH_ERRORS)
    Reader = Annotated[Principal, Depends(require(runtime.keyring, Role.READER))]
    Publisher = Annotated[Principal, Depends(require(runtime.keyring, Role.PUBLISHER))]

    @api.get(
        "",
        response_model=DeadLetterPage,
        summary="Dead letters, newest first, optionally of one run or topic.",
        responses={422: {"model": ErrorRead, "description": "A bad filter or cursor."}},
    )
    async def get_dead_letters(
        _principal: Reader,
        run_id: Annotated[str | None, Query(max_length=36, description="Only this run's.")] = None,
        topic: Annotated[
            str | None, Query(max_length=255, description="Only those that failed on this topic.")
        ] = None,
        replayed: Annotated[
            bool | None, Query(description="Only replayed (true) or never replayed (false) ones.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500, description="Dead letters per page.")] = 100,
        cursor: Annotated[
            str | None, Query(max_length=32, description="`next_cursor` of the previous page.")
        ] = None,
    ) -> DeadLetterPage:
        before_id = _decode_cursor(cursor)
        async with runtime.database.session() as session:
            rows = await list_dead_letters(
                session,
                run_id=run_id,
                topic=topic,
                replayed=replayed,
                limit=limit,
                before_id=before_id,
            )
        return DeadLetterPage(
            items=[dead_letter_read(row) for row in rows],
            next_cursor=str(rows[-1].id) if len(rows) == limit else None,
        )

    @api.post(
        "/replay",
        response_model=ReplayRead,
        summary="Republish dead letters unchanged to their original topics.",
        description=(
            "Selects records by `ids` or by `run_id`. A replayed stage input re-opens its FAILED "
            "task (and its PARTIAL or FAILED run), so the stage runs again. Records replayed "
            "before are skipped unless `force` is true."
        ),
        responses={
            400: {"model": ErrorRead, "description": "The body is not UTF-8 JSON."},
            404: {"model": ErrorRead, "description": "Some ids are not dead letters."},
            409: {"model": ErrorRead, "description": "Nothing left to replay."},
            422: {"model": ErrorRead, "description": "Neither or both of ids and run_id."},
        },
    )
    async def post_replay(body: DeadLetterReplay, principal: Publisher) -> ReplayRead:
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
            replayed=[dead_letter_read(row) for row in result.replayed],
            skipped=[SkippedDeadLetter(id=id_, reason=why) for id_, why in result.skipped],
        )

    return api


def _decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise HTTPException(422, f"not a cursor from this API: {cursor!r}")
    return int(cursor)


def dead_letter_read(row: DeadLetter) -> DeadLetterRead:
    """The API view of an indexed dead letter."""
    return DeadLetterRead(
        id=row.id,
        original_topic=row.original_topic,
        dlq_topic=row.dlq_topic,
        dlq_partition=row.dlq_partition,
        dlq_offset=row.dlq_offset,
        key=row.key,
        event_type=row.event_type,
        run_id=row.run_id,
        symbol=row.symbol,
        error=row.error,
        attempts=row.attempts,
        failed_at=row.failed_at,
        recorded_at=row.recorded_at,
        replayed_at=row.replayed_at,
        replayed_by=row.replayed_by,
        value=row.value.decode(errors="replace")[:VALUE_PREVIEW_CHARS],
    )
