"""The admin web console at /admin/: server-rendered pages over the API's own AdminOps.

Signing in checks an admin key the way the API does; the session lives in the state store
and the cookie only names it (:mod:`.signing`, :mod:`service.admin.console_sessions`). Every POST
carries Flask-WTF's CSRF token. The pages need no JavaScript, so the Content-Security-Policy
allows none. Page views are not audited, only what changes state and signing in and out.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, render_template, request, send_from_directory
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from service.admin.console_sessions import IDLE_SECONDS, cookie_key
from service.errors import ServiceError, StoreUnavailable
from service.http.console import (  # noqa: F401 (their routes)
    dashboard,
    lookup,
    pages,
    services,
    signing,
    webhooks,
)
from service.http.console.base import SECURITY_HEADERS, Message, bp, csrf
from service.http.problems import http_problem
from service.storage import STORE_ERRORS

log = logging.getLogger(__name__)
ROUTES = (dashboard, pages, services, signing)  # imported for the routes they add
# The JSON types API clients ask for; a browser's Accept prefers text/html to both.
API_TYPES = ["application/problem+json", "application/json"]


def init_app(app: Flask, settings) -> None:
    """Session cookie and store, CSRF protection, the console's routes and its 404 page."""
    app.secret_key = cookie_key(settings.secret)
    app.config.update(SESSION_COOKIE_NAME="otp_console", SESSION_COOKIE_PATH="/admin",
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      PERMANENT_SESSION_LIFETIME=IDLE_SECONDS,
                      # the JSON API takes bearer keys, not cookies: only the console checks
                      WTF_CSRF_CHECK_DEFAULT=False)
    app.session_interface = signing.CookieSessions()
    csrf.init_app(app)
    app.register_blueprint(bp)
    for routing_error in (NotFound, MethodNotAllowed):
        app.register_error_handler(routing_error, _routing_error)
    app.add_url_rule("/favicon.ico", "favicon", _favicon)


def _favicon():
    """Browsers ask every site for one; the console's pages link the same file."""
    return send_from_directory(current_app.static_folder, "favicon.ico", max_age=86400)


def _routing_error(e: HTTPException):
    """A mistyped address: the console's HTML page for a browser under /admin/ (and for the
    console's own routes); problem+json for API clients and everywhere else."""
    wants_page = request.accept_mimetypes.best_match([*API_TYPES, "text/html"]) == "text/html"
    if request.blueprint == "console" or (request.path.startswith("/admin/") and wants_page):
        detail = ("There is no console page at this address." if e.code == 404
                  else e.description)
        response = _error_page(e, "Page not found" if e.code == 404 else e.name, detail)
        response.headers.update(SECURITY_HEADERS)
        return response
    return http_problem(e)


@bp.errorhandler(CSRFError)
def _csrf_refused(e: CSRFError):
    detail = f"{e.description} Nothing was done: go back, reload the page and try again."
    return _error_page(e, "The form was refused", detail)


@bp.errorhandler(HTTPException)
def _http_error(e: HTTPException):
    return _error_page(e, e.name, e.description if (e.code or 500) < 500 else "")


@bp.errorhandler(ServiceError)
def _service_error(e: ServiceError):
    return _error_html(e.title, pages.explain(e)), e.status, e.headers


def _store_error(e: Exception):
    """Redis trouble outside the store's own guard (the sign-in limit): fail closed, as a page."""
    log.error("state store unavailable: %s", type(e).__name__)
    return _service_error(StoreUnavailable("The state store is unavailable; nothing was done."))


for _error in STORE_ERRORS:
    bp.register_error_handler(_error, _store_error)


def _error_page(e: HTTPException, title: str, detail: str):
    """The HTTP error's own response (so Allow, Retry-After survive) with an HTML body."""
    response = e.get_response()
    response.set_data(_error_html(title, Message("error", detail)))
    response.mimetype = "text/html"
    return response


def _error_html(title: str, message: Message) -> str:
    if g.get("admin") is None:
        try:  # keeps the menu for a signed-in admin
            g.admin = signing.current_admin()
        except ServiceError:  # the store is down: the page says so, without the menu
            g.admin = None
    return render_template("console/error.html", title=title, message=message)
