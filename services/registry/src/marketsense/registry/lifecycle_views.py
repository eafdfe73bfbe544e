"""Registry routes of a version's lifecycle and the views across versions: archive, alias
deletion and an alias's history, description edits, comparison, the bundle as one download and
the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from marketsense.common.api_models import AUTH_ERRORS, MAX_INT32, UNREADABLE_BODY, error_response
from marketsense.common.errors import ObjectNotFound
from marketsense.registry import audit, compare, lifecycle, service
from marketsense.registry.deps import ApproverKey, PublisherKey, ReaderKey, RuntimeDep, SessionDep
from marketsense.registry.pagination import PageCursor, PageLimit, number_cursor, read_cursor
from marketsense.registry.schemas import MODEL_NAME_PATTERN, AliasChangeRead, ModelRead, VersionRead
from marketsense.registry.schemas_lifecycle import (
    AliasChangePageRead,
    AliasDelete,
    ArchiveCreate,
    AuditPageRead,
    CompareRead,
    DescriptionUpdate,
)
from marketsense.registry.views import AliasName, ModelName, VersionNumber, as_http

_NOT_FOUND = error_response(404, "No such model, version or alias.")
_CONFLICT = error_response(409, "The request clashes with the registry's state; `detail` says how.")
_INVALID = error_response(422, "The request's values cannot be used; `detail` says which.")
_DAMAGED = error_response(500, "A stored file no longer matches its registered sha256.")

_BUNDLE_RESPONSE: dict[str, Any] = {
    "description": "A gzip tar of every file of the version, manifest.json included.",
    "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
}

router = APIRouter(prefix="/v1", responses=AUTH_ERRORS)


@router.post(
    "/models/{name}/versions/{version}/archive",
    tags=["versions"],
    response_model=VersionRead,
    summary="Archive a version: never promotable again, still downloadable (approver).",
    description=(
        "A version that an alias points at is refused with 409: move or roll back `production`, "
        "or delete the other alias, first. Archiving is final."
    ),
    responses={**UNREADABLE_BODY, **_NOT_FOUND, **_CONFLICT, **_INVALID},
)
async def post_archive(
    name: ModelName,
    version: VersionNumber,
    body: ArchiveCreate,
    principal: ApproverKey,
    runtime: RuntimeDep,
) -> VersionRead:
    with as_http():
        return await lifecycle.archive_version(
            runtime=runtime, name=name, version=version, reason=body.reason, actor=principal.name
        )


@router.delete(
    "/models/{name}/aliases/{alias}",
    tags=["aliases"],
    response_model=AliasChangeRead,
    summary="Remove an alias other than production (publisher).",
    description=(
        "Kept in the alias's history as a `delete` whose `to_version` is null; the alias then "
        "reads as unset at later times. `production` is refused with 409: move it or roll back."
    ),
    responses={**UNREADABLE_BODY, **_NOT_FOUND, **_CONFLICT, **_INVALID},
)
async def delete_alias(
    name: ModelName,
    alias: AliasName,
    body: AliasDelete,
    principal: PublisherKey,
    runtime: RuntimeDep,
) -> AliasChangeRead:
    with as_http():
        return await lifecycle.delete_alias(
            runtime=runtime, name=name, alias=alias, reason=body.reason, actor=principal.name
        )


@router.patch(
    "/models/{name}",
    tags=["models"],
    response_model=ModelRead,
    summary="Replace a model's description (publisher).",
    responses={**UNREADABLE_BODY, **_NOT_FOUND, **_INVALID},
)
async def patch_model(
    name: ModelName, body: DescriptionUpdate, principal: PublisherKey, runtime: RuntimeDep
) -> ModelRead:
    with as_http():
        return await lifecycle.edit_model_description(
            runtime=runtime,
            name=name,
            description=body.description,
            reason=body.reason,
            actor=principal.name,
        )


@router.patch(
    "/models/{name}/versions/{version}",
    tags=["versions"],
    response_model=VersionRead,
    summary="Replace a version's description (publisher).",
    responses={**UNREADABLE_BODY, **_NOT_FOUND, **_INVALID},
)
async def patch_version(
    name: ModelName,
    version: VersionNumber,
    body: DescriptionUpdate,
    principal: PublisherKey,
    runtime: RuntimeDep,
) -> VersionRead:
    with as_http():
        return await lifecycle.edit_version_description(
            runtime=runtime,
            name=name,
            version=version,
            description=body.description,
            reason=body.reason,
            actor=principal.name,
        )


@router.get(
    "/models/{name}/aliases/{alias}/history",
    tags=["aliases"],
    response_model=AliasChangePageRead,
    summary="The moves of an alias, deletions included, newest first, a page at a time.",
    responses={**_NOT_FOUND, **_INVALID},
)
async def get_history(
    name: ModelName,
    alias: AliasName,
    _key: ReaderKey,
    session: SessionDep,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> AliasChangePageRead:
    before = read_cursor(number_cursor, cursor)
    with as_http():
        return await service.alias_history(
            session=session, name=name, alias=alias, limit=limit, before=before
        )


_CompareVersion = Annotated[int, Query(ge=1, le=MAX_INT32, description="A version number.")]


@router.get(
    "/models/{name}/compare",
    tags=["versions"],
    response_model=CompareRead,
    summary="Two versions side by side: measured metrics, lineage, manifest fields and files.",
    description=(
        "Metrics are those the registry measured for both versions on the same evaluation set "
        "and graph variant; a metric only one version has there is left out."
    ),
    responses={**_NOT_FOUND, **_INVALID},
)
async def get_compare(
    name: ModelName, a: _CompareVersion, b: _CompareVersion, _key: ReaderKey, session: SessionDep
) -> CompareRead:
    with as_http():
        return await compare.compare_versions(session=session, name=name, a=a, b=b)


@router.get(
    "/models/{name}/versions/{version}/bundle",
    tags=["versions"],
    response_class=StreamingResponse,
    summary="Every file of a version, manifest.json included, as one gzip tar.",
    description=(
        "Archived versions stay downloadable for audit. Each file is checked against its "
        "registered sha256 (listed in the version's `files`) before it is sent."
    ),
    responses={200: _BUNDLE_RESPONSE, **_NOT_FOUND, **_DAMAGED},
)
async def get_bundle(
    name: ModelName,
    version: VersionNumber,
    _key: ReaderKey,
    session: SessionDep,
    runtime: RuntimeDep,
) -> StreamingResponse:
    try:
        with as_http():
            source = await lifecycle.bundle_file(
                session=session, store=runtime.store, name=name, version=version
            )
    except ObjectNotFound as error:
        raise HTTPException(
            500, f"a file of version {version} is missing from the object store"
        ) from error
    size = source.seek(0, 2)
    source.seek(0)
    return StreamingResponse(
        lifecycle.chunks(source),
        media_type="application/gzip",
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{name}-{version}.tar.gz"',
        },
    )


@router.get(
    "/audit",
    tags=["audit"],
    response_model=AuditPageRead,
    summary="The audit log across models, newest first, a page at a time.",
    description=(
        "Every push (and repeated push), refusal, promotion, rollback, archive, alias deletion, "
        "description edit and evaluation set added, with who did it and why."
    ),
    responses=_INVALID,
)
async def get_audit(
    _key: ReaderKey,
    session: SessionDep,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
    model: Annotated[
        str | None, Query(pattern=MODEL_NAME_PATTERN, description="Only this model's entries.")
    ] = None,
    action: Annotated[
        str | None,
        Query(
            pattern="^(" + "|".join(audit.AUDIT_ACTIONS) + ")$",
            description="Only entries of this action: " + ", ".join(audit.AUDIT_ACTIONS) + ".",
        ),
    ] = None,
) -> AuditPageRead:
    before = read_cursor(number_cursor, cursor)
    return await audit.audit_page(session, model=model, action=action, limit=limit, before=before)
