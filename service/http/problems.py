"""The one error handler: every error leaves as application/problem+json (RFC 9457).

HTTP errors are built from ``e.get_response()`` so that headers such as ``Allow``,
``Retry-After`` and ``WWW-Authenticate`` survive.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, json
from werkzeug.exceptions import HTTPException, InternalServerError

from service.errors import PROBLEM_BASE, ServiceError, StoreUnavailable
from service.storage import STORE_ERRORS

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "malformed_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
    413: "payload_too_large", 414: "uri_too_long", 415: "unsupported_media_type",
    417: "expectation_failed", 422: "validation_failed", 429: "rate_limited",
    431: "headers_too_large", 500: "internal_error", 501: "not_implemented",
    503: "unavailable",
}


def record(problem: dict) -> None:
    """The request's problem, as facts for its access line and metrics (:mod:`.observe`)."""
    g.problem_code = problem.get("code")
    g.problem_reason = problem.get("reason")


def problem_response(problem: dict, headers=None) -> Response:
    record(problem)
    response = Response(json.dumps(problem), status=problem["status"],
                        mimetype="application/problem+json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _service_error(e: ServiceError) -> Response:
    return problem_response(e.to_problem(), e.headers)


def _store_error(e: Exception) -> Response:
    log.error("state store unavailable: %s", type(e).__name__)
    return _service_error(StoreUnavailable("The state store is unavailable; nothing was done."))


def http_problem(e: HTTPException) -> Response:
    status = e.code or 500
    code = getattr(e, "problem_code", None) or HTTP_CODES.get(status, "error")
    problem = {"type": PROBLEM_BASE + code, "title": e.name, "status": status,
               "detail": e.description if status < 500 else "The request could not be served.",
               "code": code}
    if status == 429:
        problem["reason"] = g.get("limit_name", "limit")
    problem.update(getattr(e, "problem_extensions", {}))
    record(problem)
    response = e.get_response()
    response.data = json.dumps(problem)
    response.mimetype = "application/problem+json"
    return response


def _unexpected(e: Exception) -> Response:
    log.exception("unhandled error")
    return http_problem(InternalServerError())


def init_app(app: Flask) -> None:
    app.register_error_handler(ServiceError, _service_error)
    # Redis trouble outside the store's own guard (e.g. in the limiter): fail closed
    for error in STORE_ERRORS:
        app.register_error_handler(error, _store_error)
    app.register_error_handler(HTTPException, http_problem)
    app.register_error_handler(Exception, _unexpected)
