"""Registry REST routes: validate, call the service or a flow, serialise."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status

from marketsense.common.api_models import (
    AUTH_ERRORS,
    MAX_INT32,
    UNREADABLE_BODY,
    error_response,
)
from marketsense.common.app import Describe
from marketsense.common.auth import Role, role_allows
from marketsense.common.errors import ObjectNotFound
from marketsense.models.checks import InvalidUpload
from marketsense.models.versions import PRODUCTION
from marketsense.registry import flows, pushes, service
from marketsense.registry.deps import (
    ApproverKey,
    PublisherKey,
    ReaderKey,
    RuntimeDep,
    SessionDep,
    SettingsDep,
)
from marketsense.registry.gate import GatePolicy
from marketsense.registry.pagination import (
    PageCursor,
    PageLimit,
    name_cursor,
    number_cursor,
    read_cursor,
)
from marketsense.registry.schemas import (
    ALIAS_PATTERN,
    MODEL_NAME_PATTERN,
    AliasAtRead,
    AliasChangeRead,
    AliasUpdate,
    IsoTime,
    ModelCreate,
    ModelRead,
    RollbackCreate,
    VersionRead,
)
from marketsense.registry.schemas_lifecycle import ModelPageRead, VersionPageRead
from marketsense.registry.schemas_serving import AliasMoveRead
from marketsense.registry.serving import with_serving_warnings
from marketsense.registry.uploads import (
    PUSH_REQUEST_BODY,
    UploadInvalid,
    UploadTooLarge,
    read_push_upload,
)

ModelName = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, description="Registered model name.")]
AliasName = Annotated[str, Path(pattern=ALIAS_PATTERN, description="Alias, such as `production`.")]
VersionNumber = Annotated[
    int, Path(ge=1, le=MAX_INT32, description="Version number (the database holds 32 bits).")
]

_NOT_FOUND = error_response(404, "No such model, version, alias or file.")
_INVALID = error_response(
    422,
    "The request's values cannot be used; `detail` says why (for a request that does not match "
    "its schema, FastAPI's list of field errors).",
)
_CONFLICT = error_response(409, "The request clashes with the registry's state.")

BUNDLE_LIMIT_SENTENCE = "The bundle part may be at most `MARKETSENSE_REGISTRY_MAX_BUNDLE_MB` MiB"
"""How the upload limit reads in the OpenAPI document until the service states its own."""

_FILE_RESPONSE: dict[str, Any] = {
    "description": "The file's bytes.",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    "headers": {
        "X-Checksum-Sha256": {
            "description": "Registered hex sha256 of the file.",
            "schema": {"type": "string"},
        }
    },
}


@contextlib.contextmanager
def as_http() -> Iterator[None]:
    """Turn the service's refusals into HTTP errors with their status and message."""
    try:
        yield
    except service.RegistryProblem as problem:
        raise HTTPException(problem.status, str(problem)) from problem


router = APIRouter(prefix="/v1", responses=AUTH_ERRORS)


@router.post(
    "/models",
    tags=["models"],
    response_model=ModelRead,
    status_code=status.HTTP_201_CREATED,
    summary="Register a model name (publisher).",
    responses={**UNREADABLE_BODY, **_CONFLICT, **_INVALID},
)
async def post_model(body: ModelCreate, principal: PublisherKey, runtime: RuntimeDep) -> ModelRead:
    with as_http():
        return await flows.create_model(runtime=runtime, body=body, actor=principal.name)


@router.get(
    "/models",
    tags=["models"],
    response_model=ModelPageRead,
    summary="Registered models with their aliases and newest version, by name, a page at a time.",
    responses=_INVALID,
)
async def get_models(
    _key: ReaderKey, session: SessionDep, limit: PageLimit = 100, cursor: PageCursor = None
) -> ModelPageRead:
    after = read_cursor(name_cursor, cursor)
    return await service.list_models(session=session, limit=limit, after=after)


@router.get(
    "/models/{name}",
    tags=["models"],
    response_model=ModelRead,
    summary="One registered model with its aliases and newest version.",
    responses=_NOT_FOUND,
)
async def get_model(name: ModelName, _key: ReaderKey, session: SessionDep) -> ModelRead:
    with as_http():
        return await service.read_model(session=session, name=name)


@router.post(
    "/models/{name}/versions",
    tags=["versions"],
    response_model=VersionRead,
    status_code=status.HTTP_201_CREATED,
    summary="Push a new version: a manifest and a gzip tar of the artifact (publisher).",
    description=(
        "The upload is checked by loading it the way the serving services will; any problem "
        f"is a 422 naming the file or field. {BUNDLE_LIMIT_SENTENCE}; larger uploads get "
        "413. Versions are numbered 1, 2, 3… per model. The registry scores every graph "
        "(fp32 and int8) on its evaluation set of the model's kind: `metrics` is that "
        "measurement, `claimed_metrics` the manifest's, and `warnings` flags a claim far above "
        "it. Content identical to an earlier version's answers 200 with that version."
    ),
    responses={
        200: {
            "model": VersionRead,
            "description": "The content was pushed before: the version that has it.",
        },
        **_NOT_FOUND,
        **error_response(413, "The bundle is over the size limit."),
        **_INVALID,
    },
    openapi_extra=PUSH_REQUEST_BODY,
)
async def post_version(
    name: ModelName,
    request: Request,
    response: Response,
    principal: PublisherKey,
    runtime: RuntimeDep,
    session: SessionDep,
    settings: SettingsDep,
) -> VersionRead:
    with as_http():
        kind = await service.model_kind(session=session, name=name)
    uploads_dir = settings.home / "uploads"
    try:
        upload = await read_push_upload(
            content_type=request.headers.get("content-type"),
            content_length=request.headers.get("content-length"),
            body=request.stream(),
            max_bundle_bytes=settings.registry_max_bundle_mb << 20,
            spool_dir=uploads_dir,
        )
    except UploadTooLarge as error:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(error)) from error
    except UploadInvalid as error:
        raise HTTPException(422, str(error)) from error
    try:
        with as_http():
            pushed = await pushes.push_upload(
                runtime=runtime,
                name=name,
                kind=kind,
                upload=upload,
                uploads_dir=uploads_dir,
                max_unpacked_bytes=settings.registry_max_unpacked_mb << 20,
                actor=principal.name,
                policy=GatePolicy.from_settings(settings),
            )
    except InvalidUpload as error:
        raise HTTPException(422, str(error)) from error
    finally:
        upload.close()
    if not pushed.created:
        response.status_code = status.HTTP_200_OK
    return pushed.version


@router.get(
    "/models/{name}/versions",
    tags=["versions"],
    response_model=VersionPageRead,
    summary="A model's versions, newest first, a page at a time.",
    responses={**_NOT_FOUND, **_INVALID},
)
async def get_versions(
    name: ModelName,
    _key: ReaderKey,
    session: SessionDep,
    settings: SettingsDep,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> VersionPageRead:
    before = read_cursor(number_cursor, cursor)
    with as_http():
        return await service.list_versions(
            session=session,
            name=name,
            limit=limit,
            before=before,
            sentiment_variant=settings.registry_sentiment_variant,
        )


@router.get(
    "/models/{name}/versions/{version}",
    tags=["versions"],
    response_model=VersionRead,
    summary="One version: manifest, files with checksums, metrics and aliases.",
    responses=_NOT_FOUND,
)
async def get_version(
    name: ModelName,
    version: VersionNumber,
    _key: ReaderKey,
    session: SessionDep,
    settings: SettingsDep,
) -> VersionRead:
    with as_http():
        return await service.read_version(
            session=session,
            name=name,
            version=version,
            sentiment_variant=settings.registry_sentiment_variant,
        )


@router.get(
    "/models/{name}/versions/{version}/files/{file}",
    tags=["versions"],
    response_class=Response,
    summary="The bytes of one stored file of a version, manifest.json included.",
    description=(
        "The header `X-Checksum-Sha256` carries the sha256 the file was registered with; "
        "clients verify the bytes against it."
    ),
    responses={200: _FILE_RESPONSE, **_NOT_FOUND},
)
async def get_file(
    name: ModelName,
    version: VersionNumber,
    file: str,
    _key: ReaderKey,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    try:
        with as_http():
            content = await service.read_file(
                session=session, store=runtime.store, name=name, version=version, file=file
            )
    except ObjectNotFound as error:
        raise HTTPException(
            500, f"{file} of version {version} is missing from the object store"
        ) from error
    return Response(
        content.data,
        media_type="application/octet-stream",
        headers={
            "X-Checksum-Sha256": content.sha256,
            "Content-Disposition": f'attachment; filename="{file}"',
        },
    )


@router.get(
    "/models/{name}/aliases/{alias}",
    tags=["aliases"],
    response_model=VersionRead,
    summary="The version an alias points at.",
    responses=_NOT_FOUND,
)
async def get_alias(
    name: ModelName, alias: AliasName, _key: ReaderKey, session: SessionDep, settings: SettingsDep
) -> VersionRead:
    with as_http():
        return await service.read_alias(
            session=session,
            name=name,
            alias=alias,
            sentiment_variant=settings.registry_sentiment_variant,
        )


@router.put(
    "/models/{name}/aliases/{alias}",
    tags=["aliases"],
    response_model=AliasMoveRead,
    summary="Point an alias at a version (publisher; approver for production).",
    description=(
        "Moving `production` passes a gate: the candidate's primary metric (predictor "
        "`holdout_auc`, sentiment `heldout_macro_f1`), measured by the registry for the "
        "variant the services serve (`MARKETSENSE_REGISTRY_SENTIMENT_VARIANT`) on its active "
        "evaluation set, must be at least the current production version's on the same set; "
        "a model's first production version must reach `MARKETSENSE_REGISTRY_MIN_HELDOUT_"
        "MACRO_F1` or `MARKETSENSE_REGISTRY_MIN_HOLDOUT_AUC`. Archived versions are refused. "
        "`force: true` skips the gate, needs a reason and is audited as forced. Publishes "
        "`model.promoted`. `warnings` says when no running replica serves the model or "
        "replicas serve another variant than the gate measured."
    ),
    responses={**UNREADABLE_BODY, **_NOT_FOUND, **_CONFLICT, **_INVALID},
)
async def put_alias(
    name: ModelName,
    alias: AliasName,
    body: AliasUpdate,
    principal: PublisherKey,
    runtime: RuntimeDep,
    settings: SettingsDep,
) -> AliasMoveRead:
    if alias == PRODUCTION and not role_allows(principal.role, Role.APPROVER):
        raise HTTPException(
            403,
            f"moving {PRODUCTION} needs the {Role.APPROVER.value} role; "
            f"key {principal.name!r} is {principal.role.value}",
        )
    with as_http():
        change = await flows.move_alias(
            runtime=runtime,
            name=name,
            alias=alias,
            body=body,
            actor=principal.name,
            policy=GatePolicy.from_settings(settings),
        )
    return await with_serving_warnings(runtime, change, settings)


@router.post(
    "/models/{name}/rollback",
    tags=["aliases"],
    response_model=AliasChangeRead,
    summary="Send production back to the version that held it before its last change (approver).",
    description=(
        "The version before the last change: rolling back twice returns to where the first "
        "rollback started. No metric gate applies. Publishes `model.promoted`."
    ),
    responses={**UNREADABLE_BODY, **_NOT_FOUND, **_CONFLICT, **_INVALID},
)
async def post_rollback(
    name: ModelName, body: RollbackCreate, principal: ApproverKey, runtime: RuntimeDep
) -> AliasChangeRead:
    with as_http():
        return await flows.rollback(
            runtime=runtime, name=name, reason=body.reason, actor=principal.name
        )


@router.get(
    "/models/{name}/aliases/{alias}/at",
    tags=["aliases"],
    response_model=AliasAtRead,
    summary="Which version held an alias at a point in time.",
    responses={**_NOT_FOUND, **_INVALID},
)
async def get_alias_at(
    name: ModelName,
    alias: AliasName,
    time: Annotated[
        IsoTime,
        Query(
            description="ISO 8601 date and time with a timezone, e.g. 2026-11-25T14:30Z, that "
            "falls within years 1 to 9999 in UTC."
        ),
    ],
    _key: ReaderKey,
    session: SessionDep,
) -> AliasAtRead:
    if time.tzinfo is None:
        raise HTTPException(
            422, f"time {time.isoformat()} has no timezone; add one, such as Z or +01:00"
        )
    try:
        utc = time.astimezone(dt.UTC)
    except OverflowError as error:
        raise HTTPException(
            422, f"time {time.isoformat()} is outside years 1 to 9999 once in UTC"
        ) from error
    with as_http():
        version = await service.alias_at(session=session, name=name, alias=alias, time=utc)
    return AliasAtRead(model_name=name, alias=alias, time=utc, version=version)


def describe_bundle_limit(max_bundle_mb: int) -> Describe:
    """An OpenAPI edit stating the upload limit the registry was configured with."""

    def describe(document: dict[str, Any]) -> None:
        operation = document["paths"]["/v1/models/{name}/versions"]["post"]
        operation["description"] = operation["description"].replace(
            BUNDLE_LIMIT_SENTENCE,
            f"{BUNDLE_LIMIT_SENTENCE} (now {max_bundle_mb})",
        )

    return describe
