"""Request-level limits with Flask-Limiter: per client key on every client route. The
phone's and the end user's limits live in the domain (:mod:`service.verification.budgets`),
where the normalised number and the end user the caller names are known: the TCP peer is
the calling backend, never an end user, so no limit counts it (issue 17). A trusted
proxy's X-Forwarded-For (OTP_TRUSTED_PROXIES) still names the peer in the logs.

The moving window counts exactly, across any number of processes sharing one Redis.
Errors of the limit store are not swallowed and there is no in-memory fallback: a limit
that cannot be checked refuses the request (503 store_unavailable), never lets it through.
"""

from __future__ import annotations

import time

import redis
from flask import Flask, g
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix

from service.config import Settings
from service.errors import refusal_headers
from service.events import Event
from service.http.context import services
from service.storage import (
    STORE_ERRORS,
    limiter_storage_options,
    limiter_storage_uri,
    refresh_slots_in_background,
)

# Flask-Limiter's own headers are off: it would read the window back from Redis on every
# response (one more round trip each) and raise after the view if Redis failed meanwhile.
# Refusals get Retry-After and the RateLimit headers from _refusal_headers instead.
limiter = Limiter(key_func=get_remote_address, strategy="moving-window", headers_enabled=False,
                  swallow_errors=False, in_memory_fallback_enabled=False, key_prefix="otp-lim")


def _settings() -> Settings:
    return services().settings


def on_breach(name: str):
    """Name the limit for the problem body (``reason``) and count the hit."""

    def record(request_limit: RequestLimit) -> None:
        g.limit_name = name
        services().events(Event.LIMIT_HIT, limit=name)

    return record


per_client = limiter.shared_limit(lambda: _settings().limits.per_client, scope="per_client",
                                  key_func=lambda: g.client, on_breach=on_breach("per_client"))


def _refusal_headers(response):
    """Retry-After and the RateLimit headers on a refusal by Flask-Limiter."""
    current = limiter.current_limit if g.get("limit_name") else None
    if response.status_code != 429 or current is None:
        return response
    try:
        reset = current.reset_at
    except (redis.RedisError, *STORE_ERRORS):
        reset = int(time.time()) + 60  # the refusal stands; the wait is a fair guess
    response.headers.update(refusal_headers(reset - time.time(), current.limit.amount))
    return response


def init_app(app: Flask, settings: Settings) -> None:
    app.after_request(_refusal_headers)
    app.config.update(
        RATELIMIT_STORAGE_URI=limiter_storage_uri(settings.redis.url),
        RATELIMIT_STORAGE_OPTIONS=limiter_storage_options(settings.redis.url,
                                                          settings.redis.timeout),
    )
    # Flask-Limiter merges the options into an earlier app's (a process building several,
    # as tests do, would give a standalone store a sentinel's options)
    limiter._storage_options.clear()
    limiter.init_app(app)
    # the limits library builds its own cluster client: the same bound on a failure
    refresh_slots_in_background(getattr(limiter.storage, "storage", None))
    if settings.trusted_proxies:
        # only the configured number of proxies may speak for the client's address
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)


def skip_request_level_pass(app: Flask) -> None:
    """Drop Flask-Limiter's before-request pass when it has nothing to count.

    That pass evaluates default, application, blueprint and meta limits for every request.
    This service declares none of them: each limit is a decorator on its route, evaluated
    once by the decorator. The pass would resolve the route's limits a second time for
    nothing (~0.06 ms of CPU per request, bench/README.md). Kept whenever such a limit is
    declared, or if Flask-Limiter's layout is not the one this was written against.
    Called once the app is built, when every blueprint (and any limit on one) is known.
    """
    manager = limiter.limit_manager
    needs_pass = bool(manager.default_limits or manager.application_limits
                      or getattr(manager, "_blueprint_limits", True)
                      or getattr(limiter, "_meta_limits", True))
    hooks = app.before_request_funcs.get(None, [])
    if not needs_pass and limiter._check_request_limit in hooks:
        hooks.remove(limiter._check_request_limit)
