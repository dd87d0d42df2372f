"""Every request observed once: a request id, one JSON access event, the HTTP metrics."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from service import metrics
from service.errors import ServiceError
from service.http.context import services
from service.logs import REDACTED
from service.verification.phones import mask_phone
from service.verification.store import ID_PATTERN

REQUEST_ID_HEADER = "X-Request-ID"
# What a caller may choose as its request id; anything else is replaced by our own.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._~:@+=/-]{1,128}")
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
access_log = logging.getLogger("service.access")
# An unmatched request's path is logged so a mistyped URL can be found: bounded, with any
# segment that looks like a credential (long, letters and digits) withheld; the log filter
# masks phone numbers and configured keys in it like in any text.
LOGGED_PATH_CHARS = 256
_KEY_LIKE = re.compile(r"(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9._~+=-]{20,}")


def init_app(app: Flask, services) -> None:
    # First of the before-request hooks, so that even a request another hook refuses (a rate
    # limit, say) has its id and start time; last of the after-request hooks (they run in
    # reverse), so that it sees the response as it leaves.
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request_funcs.setdefault(None, []).insert(0, _finish)
    metrics.subscribe(services.events)


def _begin() -> None:
    g.started = time.perf_counter()
    g.request_id = _request_id()
    metrics.begin_request()


def _request_id() -> str:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    return offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


def _finish(response: Response) -> Response:
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    request_id = g.get("request_id") or _request_id()
    response.headers[REQUEST_ID_HEADER] = request_id
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    problem = _problem(response)
    metrics.observe_request(request.method, route, response.status_code, seconds, problem)
    event: dict[str, Any] = {
        "request_id": request_id, "method": request.method, "route": route,
        "status": response.status_code, "duration_ms": round(seconds * 1000, 1),
    }
    client = g.get("client") or g.get("admin")
    if client:
        event["client"] = client
    if request.url_rule is None:
        event["path"] = _logged_path()
    if problem is not None:
        event["problem"] = metrics.bounded(problem.get("code"))
    phone = _masked_phone()
    if phone:
        event["phone"] = phone
    # Probes and scrapes arrive every few seconds; when they succeed they are noise.
    quiet = route in QUIET_ROUTES and response.status_code < 400
    access_log.log(logging.DEBUG if quiet else logging.INFO, "%s %s %s", request.method, route,
                   response.status_code, extra=event)
    return response


def _logged_path() -> str:
    segments = request.path[:LOGGED_PATH_CHARS].split("/")
    return "/".join(REDACTED if _KEY_LIKE.fullmatch(part) and not ID_PATTERN.match(part)
                    else part for part in segments)


def _problem(response: Response) -> dict[str, Any] | None:
    if response.mimetype != "application/problem+json" or response.is_streamed:
        return None
    try:
        problem = json.loads(response.get_data())
    except ValueError:
        return None
    return problem if isinstance(problem, dict) else None


def _masked_phone() -> str | None:
    """The request's phone number, masked; ``invalid`` when it is not one."""
    if not request.is_json or request.method != "POST":
        return None
    try:
        body = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError, HTTPException):  # malformed, or over the size limit
        return None
    raw = body.get("phone") if isinstance(body, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        phone = services().verifications.phones.parse(raw)
    except ServiceError:
        return "invalid"
    return mask_phone(phone.e164)
