"""What every console module shares: the blueprint, CSRF, page messages, the services."""

from __future__ import annotations

from typing import NamedTuple

from flask import Blueprint, g
from flask_wtf.csrf import CSRFProtect

from service.admin.console_sessions import ConsoleSessions
from service.admin.ops import AdminOps
from service.config import SANDBOX_ADMIN_KEY
from service.http.context import services

bp = Blueprint("console", __name__, url_prefix="/admin")
csrf = CSRFProtect()

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: Flask-WTF checks the Referer of POSTs over https
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Message(NamedTuple):
    level: str  # ok | warn | error
    text: str
    code: str | None = None
    status: int = 200


def ops() -> AdminOps:
    return services().admin.ops


def sessions() -> ConsoleSessions:
    return services().admin.console_sessions


def settings():
    return services().settings


@bp.before_request
def _check_csrf():
    csrf.protect()


@bp.after_request
def _security_headers(response):
    response.headers.update(SECURITY_HEADERS)
    nonce = g.get("style_nonce")
    if nonce:  # a page with inline SVG charts: their <style> elements carry this nonce
        response.headers["Content-Security-Policy"] = SECURITY_HEADERS[
            "Content-Security-Policy"].replace("style-src 'self'",
                                               f"style-src 'self' 'nonce-{nonce}'")
    return response


@bp.app_context_processor
def _sandbox():
    """Sandbox mode is shown on every page; the built-in admin key (never a configured one)
    is offered on the sign-in page."""
    current = settings()
    builtin = current.sandbox and SANDBOX_ADMIN_KEY in current.keys.admins.values()
    return {"sandbox": current.sandbox, "sandbox_admin_key": SANDBOX_ADMIN_KEY if builtin else None}
