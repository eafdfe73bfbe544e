"""Registry REST routes: validate, call the service, serialise."""

# No `from __future__ import annotations` here: FastAPI reads the `Annotated` dependency aliases
# that `router()` defines locally, which string annotations would leave unresolvable.

import asyncio
import contextlib
import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status

from marketsense.common.auth import Principal, Role, require, role_allows
from marketsense.common.errors import ObjectNotFound
from marketsense.common.model_bundles import PRODUCTION
from marketsense.common.runtime import Runtime
from marketsense.registry import service
from marketsense.registry.config import RegistrySettings
from marketsense.registry.schemas import (
    ALIAS_PATTERN,
    MODEL_NAME_PATTERN,
    AliasAtRead,
    AliasChangeRead,
    AliasUpdate,
    AuditPageRead,
    ErrorRead,
    ModelCreate,
    ModelRead,
    RollbackCreate,
    VersionRead,
)
from marketsense.registry.uploads import (
    BUNDLE_PART,
    MANIFEST_PART,
    UploadInvalid,
    UploadTooLarge,
    read_push_upload,
)
from marketsense.registry.validation import InvalidUpload, check_upload

ModelName = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, description="Registered model name.")]
AliasName = Annotated[str, Path(pattern=ALIAS_PATTERN, description="Alias, such as `production`.")]
VersionNumber = Annotated[int, Path(ge=1, description="Version number.")]

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorRead, "description": "No API key, or an unknown or revoked one."},
    403: {"model": ErrorRead, "description": "The key's role does not allow this."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorRead, "description": "No such model, version, alias or file."}
}
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorRead,
        "description": "The request's values cannot be used; `detail` says why (for a request "
        "that does not match its schema, FastAPI's list of field errors).",
    }
}
_UNREADABLE_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorRead, "description": "The body cannot be read as JSON text (not UTF-8)."}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorRead, "description": "The request clashes with the registry's state."}
}

_PUSH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [MANIFEST_PART, BUNDLE_PART],
                    "properties": {
                        MANIFEST_PART: {
                            "type": "string",
                            "format": "binary",
                            "description": "The manifest JSON (PredictorManifest or "
                            "SentimentManifest); its name and version are replaced.",
                        },
                        BUNDLE_PART: {
                            "type": "string",
                            "format": "binary",
                            "description": "A gzip tar of the artifact's files at the top level: "
                            "predictor: model.onnx; sentiment: model.onnx, tokenizer.json and "
                            "optionally model.int8.onnx.",
                        },
                    },
                }
            }
        },
    }
}


@contextlib.contextmanager
def _as_http() -> Iterator[None]:
    """Turn the service's refusals into HTTP errors with their status and message."""
    try:
        yield
    except service.RegistryProblem as problem:
        raise HTTPException(problem.status, str(problem)) from problem


def router(runtime: Runtime, settings: RegistrySettings) -> APIRouter:
    """The registry's routes: models, versions and their files, aliases, and the audit log."""
    api = APIRouter(prefix="/v1")
    reader = Annotated[Principal, Depends(require(runtime.keyring, Role.READER))]
    publisher = Annotated[Principal, Depends(require(runtime.keyring, Role.PUBLISHER))]
    approver = Annotated[Principal, Depends(require(runtime.keyring, Role.APPROVER))]
    max_bundle_bytes = settings.registry_max_bundle_mb << 20
    max_unpacked_bytes = settings.registry_max_unpacked_mb << 20
    uploads_dir = settings.home / "uploads"

    @api.post(
        "/models",
        tags=["models"],
        response_model=ModelRead,
        status_code=status.HTTP_201_CREATED,
        summary="Register a model name (publisher).",
        responses={**_UNREADABLE_BODY, **_AUTH, **_CONFLICT, **_INVALID},
    )
    async def post_model(body: ModelCreate, principal: publisher) -> ModelRead:
        with _as_http():
            async with runtime.transaction() as session:
                return await service.create_model(session=session, body=body, actor=principal.name)

    @api.get(
        "/models",
        tags=["models"],
        response_model=list[ModelRead],
        summary="Every registered model with its aliases and newest version.",
        responses={**_AUTH},
    )
    async def get_models(_: reader) -> list[ModelRead]:
        async with runtime.database.session() as session:
            return await service.list_models(session=session)

    @api.get(
        "/models/{name}",
        tags=["models"],
        response_model=ModelRead,
        summary="One registered model with its aliases and newest version.",
        responses={**_AUTH, **_NOT_FOUND},
    )
    async def get_model(name: ModelName, _: reader) -> ModelRead:
        with _as_http():
            async with runtime.database.session() as session:
                return await service.read_model(session=session, name=name)

    @api.post(
        "/models/{name}/versions",
        tags=["versions"],
        response_model=VersionRead,
        status_code=status.HTTP_201_CREATED,
        summary="Push a new version: a manifest and a gzip tar of the artifact (publisher).",
        description=(
            "The upload is checked by loading it the way the serving services will; any problem "
            "is a 422 naming the file or field. The bundle part may be at most "
            f"`MARKETSENSE_REGISTRY_MAX_BUNDLE_MB` MiB (now {settings.registry_max_bundle_mb}); "
            "larger uploads get 413. Versions are numbered 1, 2, 3… per model."
        ),
        responses={
            **_AUTH,
            **_NOT_FOUND,
            413: {"model": ErrorRead, "description": "The bundle is over the size limit."},
            **_INVALID,
        },
        openapi_extra=_PUSH_BODY,
    )
    async def post_version(name: ModelName, request: Request, principal: publisher) -> VersionRead:
        with _as_http():
            async with runtime.database.session() as session:
                kind = await service.model_kind(session=session, name=name)
        await asyncio.to_thread(uploads_dir.mkdir, parents=True, exist_ok=True)
        try:
            upload = await read_push_upload(
                content_type=request.headers.get("content-type"),
                content_length=request.headers.get("content-length"),
                body=request.stream(),
                max_bundle_bytes=max_bundle_bytes,
                spool_dir=str(uploads_dir),
            )
        except UploadTooLarge as error:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(error)) from error
        except UploadInvalid as error:
            raise HTTPException(422, str(error)) from error
        directory: FilePath | None = None
        try:
            directory = FilePath(await asyncio.to_thread(tempfile.mkdtemp, dir=uploads_dir))
            # Unpacking and onnxruntime sessions block: keep them off the event loop.
            checked = await asyncio.to_thread(
                check_upload,
                kind=kind,
                model_name=name,
                manifest_bytes=upload.manifest,
                bundle=upload.bundle,
                directory=directory,
                max_unpacked_bytes=max_unpacked_bytes,
            )
            with _as_http():
                return await service.push_version(
                    runtime=runtime, name=name, checked=checked, actor=principal.name
                )
        except InvalidUpload as error:
            raise HTTPException(422, str(error)) from error
        finally:
            upload.close()
            if directory is not None:
                await asyncio.to_thread(shutil.rmtree, directory, True)

    @api.get(
        "/models/{name}/versions",
        tags=["versions"],
        response_model=list[VersionRead],
        summary="Every version of a model, newest first.",
        responses={**_AUTH, **_NOT_FOUND},
    )
    async def get_versions(name: ModelName, _: reader) -> list[VersionRead]:
        with _as_http():
            async with runtime.database.session() as session:
                return await service.list_versions(session=session, name=name)

    @api.get(
        "/models/{name}/versions/{version}",
        tags=["versions"],
        response_model=VersionRead,
        summary="One version: manifest, files with checksums, metrics and aliases.",
        responses={**_AUTH, **_NOT_FOUND},
    )
    async def get_version(name: ModelName, version: VersionNumber, _: reader) -> VersionRead:
        with _as_http():
            async with runtime.database.session() as session:
                return await service.read_version(session=session, name=name, version=version)

    @api.get(
        "/models/{name}/versions/{version}/files/{file}",
        tags=["versions"],
        response_class=Response,
        summary="The bytes of one stored file of a version, manifest.json included.",
        description=(
            "The header `X-Checksum-Sha256` carries the sha256 the file was registered with; "
            "clients verify the bytes against it."
        ),
        responses={
            200: {
                "description": "The file's bytes.",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
                "headers": {
                    "X-Checksum-Sha256": {
                        "description": "Registered hex sha256 of the file.",
                        "schema": {"type": "string"},
                    }
                },
            },
            **_AUTH,
            **_NOT_FOUND,
        },
    )
    async def get_file(name: ModelName, version: VersionNumber, file: str, _: reader) -> Response:
        try:
            with _as_http():
                async with runtime.database.session() as session:
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

    @api.get(
        "/models/{name}/aliases/{alias}",
        tags=["aliases"],
        response_model=VersionRead,
        summary="The version an alias points at.",
        responses={**_AUTH, **_NOT_FOUND},
    )
    async def get_alias(name: ModelName, alias: AliasName, _: reader) -> VersionRead:
        with _as_http():
            async with runtime.database.session() as session:
                return await service.read_alias(session=session, name=name, alias=alias)

    @api.put(
        "/models/{name}/aliases/{alias}",
        tags=["aliases"],
        response_model=AliasChangeRead,
        summary="Point an alias at a version (publisher; approver for production).",
        description=(
            "Moving `production` passes a gate: the candidate's primary metric (predictor "
            "`holdout_auc`, sentiment `heldout_macro_f1`) must be at least the current "
            "production version's, measured on the same `evaluation_window`. `force: true` skips "
            "the gate, needs a reason and is audited as forced. Publishes `model.promoted`."
        ),
        responses={**_UNREADABLE_BODY, **_AUTH, **_NOT_FOUND, **_CONFLICT, **_INVALID},
    )
    async def put_alias(
        name: ModelName, alias: AliasName, body: AliasUpdate, principal: publisher
    ) -> AliasChangeRead:
        if alias == PRODUCTION and not role_allows(principal.role, Role.APPROVER):
            raise HTTPException(
                403,
                f"moving {PRODUCTION} needs the {Role.APPROVER.value} role; "
                f"key {principal.name!r} is {principal.role.value}",
            )
        with _as_http():
            return await service.move_alias(
                runtime=runtime, name=name, alias=alias, body=body, actor=principal.name
            )

    @api.post(
        "/models/{name}/rollback",
        tags=["aliases"],
        response_model=AliasChangeRead,
        summary="Send production back to the version that held it before its last change "
        "(approver).",
        description=(
            "The version before the last change: rolling back twice returns to where the first "
            "rollback started. No metric gate applies. Publishes `model.promoted`."
        ),
        responses={**_UNREADABLE_BODY, **_AUTH, **_NOT_FOUND, **_CONFLICT, **_INVALID},
    )
    async def post_rollback(
        name: ModelName, body: RollbackCreate, principal: approver
    ) -> AliasChangeRead:
        with _as_http():
            return await service.rollback(
                runtime=runtime, name=name, reason=body.reason, actor=principal.name
            )

    @api.get(
        "/models/{name}/aliases/{alias}/history",
        tags=["aliases"],
        response_model=list[AliasChangeRead],
        summary="Every move of an alias, newest first.",
        responses={**_AUTH, **_NOT_FOUND},
    )
    async def get_history(name: ModelName, alias: AliasName, _: reader) -> list[AliasChangeRead]:
        with _as_http():
            async with runtime.database.session() as session:
                return await service.alias_history(session=session, name=name, alias=alias)

    @api.get(
        "/models/{name}/aliases/{alias}/at",
        tags=["aliases"],
        response_model=AliasAtRead,
        summary="Which version held an alias at a point in time.",
        responses={**_AUTH, **_NOT_FOUND, **_INVALID},
    )
    async def get_alias_at(
        name: ModelName,
        alias: AliasName,
        time: Annotated[
            dt.datetime,
            Query(description="ISO 8601 date and time with a timezone, e.g. 2026-11-25T14:30Z."),
        ],
        _: reader,
    ) -> AliasAtRead:
        if time.tzinfo is None:
            raise HTTPException(
                422, f"time {time.isoformat()} has no timezone; add one, such as Z or +01:00"
            )
        with _as_http():
            async with runtime.database.session() as session:
                version = await service.alias_at(session=session, name=name, alias=alias, time=time)
        return AliasAtRead(model_name=name, alias=alias, time=service.utc(time), version=version)

    @api.get(
        "/audit",
        tags=["audit"],
        response_model=AuditPageRead,
        summary="Alias changes across models, newest first, a page at a time.",
        responses={**_AUTH, **_NOT_FOUND, **_INVALID},
    )
    async def get_audit(
        _: reader,
        model: Annotated[
            str | None, Query(pattern=MODEL_NAME_PATTERN, description="Only this model's changes.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500, description="Entries per page.")] = 50,
        cursor: Annotated[
            str | None, Query(description="`next_cursor` of the previous page.")
        ] = None,
    ) -> AuditPageRead:
        position = None
        if cursor is not None:
            if not (cursor.isascii() and cursor.isdigit()) or int(cursor) < 1:
                raise HTTPException(422, f"cursor {cursor!r} is not one this API handed out")
            position = int(cursor)
        with _as_http():
            async with runtime.database.session() as session:
                return await service.audit_page(
                    session=session, model=model, limit=limit, cursor=position
                )

    return api
