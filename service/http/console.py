"""The admin web console at /admin/: server-rendered pages over the API's own AdminOps.

Signing in checks an admin key the way the API does and keeps only the key's NAME, with an
HMAC fingerprint of the key (so a removed or rotated key ends its sessions), in Flask's
signed session cookie: HttpOnly, SameSite=Strict, Secure over https, scoped to /admin.
Every POST carries Flask-WTF's CSRF token. The pages need no JavaScript, so the
Content-Security-Policy allows none.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
from datetime import timedelta
from typing import NamedTuple

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from service.admin_ops import AdminOps, OriginatorStatus
from service.errors import ServiceError
from service.gateway import OriginatorState
from service.http import schemas
from service.http.admin import AUDIT_QUERY, LOCKOUT
from service.http.auth import admin_key_name
from service.http.limits import limiter, on_breach

log = logging.getLogger(__name__)
bp = Blueprint("console", __name__, url_prefix="/admin")
csrf = CSRFProtect()

IDLE = timedelta(minutes=30)  # the signed cookie's max age; each page view renews it
ABSOLUTE_SECONDS = 8 * 3600  # a sign-in ends after a working day, however busy
SIGN_IN_LIMIT = "10 per minute;100 per day"  # per client address: keys are not guessed here
AUDIT_PAGE_SIZE = 50
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


# What each gateway answer means for the admin, and what to do next.
STATE_TEXT = {
    OriginatorState.NO_AUTHORIZATION_NEEDED: ("ok", "{} is an alphanumeric sender id: it needs "
                                                    "no unlocking."),
    OriginatorState.AUTHORIZED: ("ok", "{} is authorized: SMS can be sent with it as sender."),
    OriginatorState.PENDING: ("warn", "An unlock code has been texted to {} and not used yet: "
                                      "enter it (step 3), or send a new one."),
    OriginatorState.NOT_AUTHORIZED: ("warn", "{} is not authorized: the gateway refuses SMS from "
                                             "it until it is unlocked. Send it an unlock code "
                                             "(step 2)."),
}
SENT_TEXT = "An unlock code is on its way to {} by SMS: enter it below when it arrives (step 3)."
HINTS = {
    "upstream_auth_failed": "Check ASPSMS_USERKEY and ASPSMS_PASSWORD.",
    "upstream_insufficient_credits": "Buy credits in the ASPSMS customer area.",
    "upstream_timeout": "Nothing is known about the outcome: check the state before retrying.",
}


class _Sessions(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the console is reached over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)

    def open_session(self, app: Flask, request):
        # Without cookies (JSON API requests: the console's cookie has the path /admin) the
        # session is empty; Flask would first build a signing serializer and parse the
        # cookies, ~10 µs per request.
        if "HTTP_COOKIE" not in request.environ:
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask, settings) -> None:
    """Session cookie, CSRF protection and the console's routes."""
    # A key of its own, so the cookie's signatures say nothing about OTP_SECRET.
    app.secret_key = hmac.new(settings.secret, b"aspsms-verify console session",
                              hashlib.sha256).digest()
    app.config.update(SESSION_COOKIE_NAME="otp_console", SESSION_COOKIE_PATH="/admin",
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      PERMANENT_SESSION_LIFETIME=IDLE,
                      # the JSON API takes bearer keys, not cookies: only the console checks
                      WTF_CSRF_CHECK_DEFAULT=False)
    app.session_interface = _Sessions()
    csrf.init_app(app)
    app.register_blueprint(bp)


def _ops() -> AdminOps:
    return current_app.extensions["otp_admin"]


def _fingerprint(key: str) -> str:
    return hmac.new(current_app.secret_key, key.encode(), hashlib.sha256).hexdigest()


def _session_admin() -> str | None:
    """The signed-in key's name, while that key is still configured and the sign-in fresh."""
    name, since = session.get("admin"), session.get("since")
    key = current_app.extensions["otp"].settings.admin_keys.get(name) if name else None
    if key is None or not isinstance(since, int) or time.time() - since > ABSOLUTE_SECONDS:
        return None
    return name if hmac.compare_digest(session.get("key", ""), _fingerprint(key)) else None


def signed_in(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.admin = _session_admin()
        if g.admin is None:
            expired = "admin" in session
            session.clear()
            if expired:
                flash("Your session has ended: please sign in again.", "warn")
            return redirect(url_for("console.sign_in"), 303)
        return view(*args, **kwargs)

    return wrapper


@bp.before_request
def _check_csrf():
    csrf.protect()


@bp.after_request
def _security_headers(response):
    response.headers.update(SECURITY_HEADERS)
    return response


@bp.errorhandler(CSRFError)
def _csrf_refused(e: CSRFError):
    detail = f"{e.description} Nothing was done: go back, reload the page and try again."
    return _error_page(e, "The form was refused", detail)


@bp.errorhandler(HTTPException)
def _http_error(e: HTTPException):
    return _error_page(e, e.name, e.description if (e.code or 500) < 500 else "")


@bp.errorhandler(ServiceError)
def _service_error(e: ServiceError):
    return _error_html(e.title, _explain(e)), e.status, e.headers


def _error_page(e: HTTPException, title: str, detail: str):
    """The HTTP error's own response (so Allow, Retry-After survive) with an HTML body."""
    response = e.get_response()
    response.set_data(_error_html(title, Message("error", detail)))
    response.mimetype = "text/html"
    return response


def _error_html(title: str, message: Message) -> str:
    g.admin = g.get("admin") or _session_admin()  # keeps the menu for a signed-in admin
    return render_template("console/error.html", title=title, message=message)


# -- signing in and out -------------------------------------------------------------------
@bp.route("/console/sign-in", methods=["GET", "POST"])
@limiter.limit(SIGN_IN_LIMIT, methods=["POST"], scope="console_sign_in",
               on_breach=on_breach("console_sign_in"))
def sign_in():
    """Sign in with an admin key."""
    if request.method == "GET":
        if _session_admin():
            return redirect(url_for("console.overview"), 303)
        return render_template("console/sign_in.html")
    key = request.form.get("key", "").strip()
    name = admin_key_name(key) if key else None
    if name is None:
        log.warning("console sign-in refused: not an admin key")
        refused = Message("error", "That is not an admin key.", "unauthorized")
        return render_template("console/sign_in.html", messages=[refused]), 401
    session.clear()  # a fresh session, and a fresh CSRF token, for each sign-in
    session.permanent = True
    session.update(admin=name, key=_fingerprint(key), since=int(time.time()))
    _ops().audit.record(name, "console.sign_in", "console", "ok")
    return redirect(url_for("console.overview"), 303)


@bp.post("/console/sign-out")
def sign_out():
    """Sign out."""
    name = _session_admin()
    session.clear()
    if name:
        _ops().audit.record(name, "console.sign_out", "console", "ok")
    flash("You are signed out.", "ok")
    return redirect(url_for("console.sign_in"), 303)


# -- pages ----------------------------------------------------------------------------------
@bp.get("/")
@signed_in
def overview():
    """Credits and the configured sender id."""
    credits, credits_error = _attempt(lambda: _ops().account_credits(g.admin))
    status, status_error = _attempt(lambda: _ops().configured_originator_status(g.admin))
    return render_template("console/overview.html", credits=credits, status=status,
                           state=_state_message(status) if status else status_error,
                           credits_error=credits_error)


@bp.get("/console/originators")
@signed_in
def originator():
    """Step 1 of the unlock flow: a sender id's state, and the step it needs next."""
    typed = request.args.get("originator", "").strip()
    if not typed:
        return render_template("console/originator.html", originator="", steps=())
    return _originator_page(typed, lambda: _ops().originator_status(g.admin, typed))


@bp.post("/console/originators/unlock-code")
@signed_in
def send_unlock_code():
    """Step 2: have the gateway text an unlock code to the number."""
    typed = request.form.get("originator", "").strip()
    return _originator_page(typed, lambda: _ops().request_unlock_code(g.admin, typed), sent=True)


@bp.post("/console/originators/unlock")
@signed_in
def unlock():
    """Step 3: unlock the number with the code texted to it."""
    typed = request.form.get("originator", "").strip()

    def action() -> OriginatorStatus:
        code = _load(schemas.UNLOCK, unlock_code=request.form.get("unlock_code", "").strip())
        return _ops().unlock_originator(g.admin, typed, code["unlock_code"])

    return _originator_page(typed, action)


@bp.route("/console/lockouts", methods=["GET", "POST"])
@signed_in
def lockouts():
    """Lift a phone number's lock after too many wrong codes."""
    if request.method == "GET":
        return render_template("console/lockouts.html")

    def action() -> Message:
        phone = _load(LOCKOUT, phone=request.form.get("phone", "").strip())["phone"]
        result = _ops().clear_lockout(g.admin, phone)
        if result["cleared"]:
            return Message("ok", f"Cleared: {result['phone']} can check codes again.")
        return Message("ok", f"{result['phone']} was not locked: nothing to clear.")

    message, error = _attempt(action)
    shown = message or error
    return render_template("console/lockouts.html", messages=[shown]), shown.status


@bp.get("/console/audit")
@signed_in
def audit():
    """The audit log, newest first, a page at a time."""
    before = request.args.get("before") or None
    if before is not None:
        _load(AUDIT_QUERY, before=before)
    entries, cursor = _ops().audit_page(g.admin, AUDIT_PAGE_SIZE, before)
    return render_template("console/audit.html", entries=entries, cursor=cursor,
                           first_page=before is None)


# -- helpers --------------------------------------------------------------------------------
def _originator_page(typed: str, action, *, sent: bool = False):
    status, error = _attempt(action)
    if status is None:
        rejected = error.code == "unlock_code_rejected"
        steps = ("send", "enter") if rejected else ()
        return render_template("console/originator.html", originator=typed, messages=[error],
                               steps=steps), error.status
    message = _state_message(status)
    if sent and status.state is OriginatorState.PENDING:
        message = Message("ok", SENT_TEXT.format(status.originator))
    steps = {OriginatorState.NOT_AUTHORIZED: ("send",),
             OriginatorState.PENDING: ("enter", "send")}.get(status.state, ())
    return render_template("console/originator.html", originator=typed, status=status,
                           messages=[message], steps=steps)


def _state_message(status: OriginatorStatus) -> Message:
    level, text = STATE_TEXT[status.state]
    return Message(level, text.format(status.originator), status.state.value)


def _attempt(action):
    """``(result, None)``, or ``(None, message)`` for a refusal the page explains."""
    try:
        return action(), None
    except ServiceError as e:
        return None, _explain(e)


def _explain(e: ServiceError) -> Message:
    text = " ".join(part for part in (e.detail, HINTS.get(e.code, "")) if part)
    if "upstream_status_code" in e.extensions:
        text += f" (gateway status {e.extensions['upstream_status_code']})"
    return Message("error", text, e.code, e.status)


def _load(schema, **values) -> dict:
    """The API's own schema check, for a form."""
    try:
        return schema.load(values)
    except ValidationError as e:
        field, problems = next(iter(e.messages.items()))
        raise schemas.ValidationFailed(f"{field.replace('_', ' ')}: {' '.join(problems)}",
                                       errors=e.messages) from None
