"""The aiohttp application: routing, AWS-shaped errors, request ids and fault injection."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import control, jobs, uploads, vault_lock, vaults
from .errors import ConnectionCut, GlacierError
from .state import EmulatorState
from .transfer import cut_connection, cut_while_reading, drain_body, send_cut_response
from .wire import CUT_REQUEST_AFTER, CUT_RESPONSE_AFTER, STATE

log = logging.getLogger("emulators.glacier")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STREAMING_OPERATIONS = frozenset({"UploadArchive", "UploadMultipartPart"})
V = "/{account}/vaults/{vault}"
ROUTES: list[tuple[str, str, Handler, str]] = [
    ("GET", "/{account}/vaults", vaults.list_vaults, "ListVaults"),
    ("PUT", V, vaults.create_vault, "CreateVault"),
    ("GET", V, vaults.describe_vault, "DescribeVault"),
    ("DELETE", V, vaults.delete_vault, "DeleteVault"),
    ("POST", V + "/archives", vaults.upload_archive, "UploadArchive"),
    ("DELETE", V + "/archives/{archive}", vaults.delete_archive, "DeleteArchive"),
    ("POST", V + "/multipart-uploads", uploads.initiate_upload, "InitiateMultipartUpload"),
    ("GET", V + "/multipart-uploads", uploads.list_uploads, "ListMultipartUploads"),
    ("PUT", V + "/multipart-uploads/{upload}", uploads.upload_part, "UploadMultipartPart"),
    ("POST", V + "/multipart-uploads/{upload}", uploads.complete_upload, "CompleteMultipartUpload"),
    ("DELETE", V + "/multipart-uploads/{upload}", uploads.abort_upload, "AbortMultipartUpload"),
    ("GET", V + "/multipart-uploads/{upload}", uploads.list_parts, "ListParts"),
    ("POST", V + "/jobs", jobs.initiate_job, "InitiateJob"),
    ("GET", V + "/jobs", jobs.list_jobs, "ListJobs"),
    ("GET", V + "/jobs/{job}", jobs.describe_job, "DescribeJob"),
    ("GET", V + "/jobs/{job}/output", jobs.get_job_output, "GetJobOutput"),
    ("POST", V + "/lock-policy", vault_lock.initiate_vault_lock, "InitiateVaultLock"),
    ("POST", V + "/lock-policy/{lock}", vault_lock.complete_vault_lock, "CompleteVaultLock"),
    ("DELETE", V + "/lock-policy", vault_lock.abort_vault_lock, "AbortVaultLock"),
    ("GET", V + "/lock-policy", vault_lock.get_vault_lock, "GetVaultLock"),
]


def error_response(error: GlacierError) -> web.Response:
    """The JSON error body Glacier sends; botocore reads ``code`` into ``Error.Code``."""
    body = {"code": error.code, "message": error.message, "type": error.kind}
    return web.Response(
        status=error.status, body=json.dumps(body).encode(), content_type="application/json"
    )


def operation_of(request: web.Request) -> str:
    """The AWS operation name of a routed request, ``Unknown`` otherwise."""
    name = request.match_info.route.name
    return name or "Unknown"


def _check_common_headers(request: web.Request) -> None:
    if "Authorization" not in request.headers:
        raise GlacierError("MissingAuthenticationTokenException", "Missing Authentication Token")
    if request.headers.get("x-amz-glacier-version") != "2012-06-01":
        raise GlacierError(
            "MissingParameterValueException", "Required parameter missing: x-amz-glacier-version"
        )


async def _handle(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    if request.match_info.http_exception is not None:
        raise GlacierError(
            "NotImplemented", f"{request.method} {request.path} is not emulated", status=501
        )
    operation = operation_of(request)
    state.stats.requests[operation] += 1
    _check_common_headers(request)
    fault = state.faults.take(operation)
    if fault is not None:
        state.stats.faults_injected[operation] += 1
        log.info("glacier.fault_injected %s %s", operation, fault.kind)
        if fault.kind == "error":
            kind = "Server" if fault.status >= 500 else "Client"
            raise GlacierError(fault.code, fault.message, status=fault.status, kind=kind)
        if fault.kind == "drop":
            cut_connection(request)
        if fault.kind == "cut_request" and operation in STREAMING_OPERATIONS:
            request[CUT_REQUEST_AFTER] = fault.after_bytes
        elif fault.kind == "cut_request":
            await cut_while_reading(request, fault.after_bytes)
        else:
            request[CUT_RESPONSE_AFTER] = fault.after_bytes
    response = await handler(request)
    cut_after = request.get(CUT_RESPONSE_AFTER)
    if cut_after is not None and isinstance(response, web.Response) and not response.prepared:
        await send_cut_response(request, response, cut_after)
    return response


@web.middleware
async def glacier_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn GlacierError into AWS JSON errors; apply injected faults; skip control calls."""
    if request.path.startswith(control.PREFIX + "/"):
        return await handler(request)
    try:
        return await _handle(request, handler)
    except GlacierError as error:
        await drain_body(request)
        return error_response(error)
    except ConnectionCut:
        # The connection is gone on purpose; aiohttp has nothing left to send it.
        response = web.Response(status=500)
        response.force_close()
        return response


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["x-amzn-RequestId"] = secrets.token_urlsafe(33)


def create_app(state: EmulatorState) -> web.Application:
    """A ready-to-run aiohttp application serving ``state``."""
    app = web.Application(middlewares=[glacier_middleware])
    app[STATE] = state
    app.on_response_prepare.append(_add_request_id)
    control.add_routes(app)
    for method, path, handler, name in ROUTES:
        app.router.add_route(method, path, handler, name=name)
    return app
