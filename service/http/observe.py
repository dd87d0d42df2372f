"""Every request observed once: a request id, one JSON access event, the HTTP metrics.

What the event says about the request's outcome is recorded on ``g`` where it is known: the
problem renderer records the problem's code (:func:`service.http.problems.record`), a view
that was given a phone number records it masked (:func:`note_phone`). Nothing here reads the
request or the response body again.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from service import metrics, waits
from service.errors import ServiceError
from service.events import Event
from service.http.context import services
from service.logs import REDACTED
from service.verification.keys import ID_PATTERN
from service.verification.phones import mask_phone

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


def init_app(app: Flask, built) -> None:
    # First of the before-request hooks, so that even a request another hook refuses (a rate
    # limit, say) has its id and start time; last of the after-request hooks (they run in
    # reverse), so that it sees the response as it leaves.
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request_funcs.setdefault(None, []).insert(0, _finish)
    metrics.subscribe(built.events)
    built.events.subscribe(_note_limit_hit)


def _begin() -> None:
    waits.begin()  # this request has not waited for the store yet
    g.started = time.perf_counter()
    g.request_id = _request_id()


def note_phone(e164: str) -> None:
    """The request's phone number (normalised), for its access event: masked."""
    g.phone = mask_phone(e164)


def note_named_phone(raw: Any) -> None:
    """The number a request's body named, when its work failed before it said which number
    that is: parsed here (masked, or ``invalid`` when it is not one)."""
    if not isinstance(raw, str):
        return
    try:
        tenant = g.get("tenant") or services().default_tenant
        note_phone(tenant.phones.parse(raw).e164)
    except ServiceError:
        g.phone = "invalid"


@contextmanager
def naming_phone(raw: Any) -> Iterator[None]:
    """Around the work of a request whose body named ``raw`` as its number; a success notes
    the number itself (:func:`note_phone`), from what the work returned."""
    try:
        yield
    except Exception:
        note_named_phone(raw)
        raise


def _note_limit_hit(name: Event, **_: Any) -> None:
    """A limit announced its refusal (and metrics counted it): the 429 is not counted again."""
    if name is Event.LIMIT_HIT and has_request_context():
        g.limit_counted = True


def _request_id() -> str:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    return offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


def _finish(response: Response) -> Response:
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    request_id = g.get("request_id") or _request_id()
    response.headers[REQUEST_ID_HEADER] = request_id
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    problem = g.get("problem_code")
    metrics.observe_request(request.method, route, response.status_code, seconds, problem)
    if response.status_code == 429 and problem is not None and not g.get("limit_counted"):
        metrics.count_limit_hit(g.get("problem_reason") or "unknown")
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
        event["problem"] = metrics.bounded(problem)
    if g.get("phone"):
        event["phone"] = g.phone
    # Probes and scrapes arrive every few seconds; when they succeed they are noise.
    quiet = route in QUIET_ROUTES and response.status_code < 400
    access_log.log(logging.DEBUG if quiet else logging.INFO, "%s %s %s", request.method, route,
                   response.status_code, extra=event)
    return response


def _logged_path() -> str:
    segments = request.path[:LOGGED_PATH_CHARS].split("/")
    return "/".join(REDACTED if _KEY_LIKE.fullmatch(part) and not ID_PATTERN.match(part)
                    else part for part in segments)

