"""Signing in and out of the console, and the check every page makes.

The cookie (Flask's signed session: HttpOnly, SameSite=Strict, Secure over https, scoped to
/admin) holds a session id and Flask-WTF's CSRF token; who is signed in, and whether that
still holds, is decided by :class:`service.admin.console_sessions.ConsoleSessions` on each request.
"""

from __future__ import annotations

import functools
import logging

from flask import Flask, flash, g, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from service.http.auth import admin_key_name
from service.http.console.base import Message, bp, ops, sessions, settings
from service.http.limits import limiter, on_breach

log = logging.getLogger(__name__)

SIGN_IN_LIMIT = "10 per minute;100 per day"  # per client address: keys are not guessed here


class CookieSessions(SecureCookieSessionInterface):
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


def current_admin() -> str | None:
    """The signed-in admin key's name, looked up once per request."""
    if "console_admin" not in g:
        session_id = session.get("sid")
        g.console_admin = (sessions().admin(session_id, settings().keys.admins)
                           if isinstance(session_id, str) else None)
    return g.console_admin


def signed_in(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.admin = current_admin()
        if g.admin is None:
            ended = "sid" in session
            session.clear()
            if ended:
                flash("Your session has ended: please sign in again.", "warn")
            return redirect(url_for("console.sign_in"), 303)
        return view(*args, **kwargs)

    return wrapper


@bp.route("/console/sign-in", methods=["GET", "POST"])
@limiter.limit(SIGN_IN_LIMIT, methods=["POST"], scope="console_sign_in",
               on_breach=on_breach("console_sign_in"))
def sign_in():
    """Sign in with an admin key."""
    if request.method == "GET":
        if current_admin():
            return redirect(url_for("console.overview"), 303)
        return render_template("console/sign_in.html")
    key = request.form.get("key", "").strip()
    name = admin_key_name(key) if key else None
    if name is None:
        log.warning("console sign-in refused: not an admin key")
        refused = Message("error", "That is not an admin key.", "unauthorized")
        return render_template("console/sign_in.html", messages=[refused]), 401
    _end_session()
    session.permanent = True
    session["sid"] = sessions().create(name, key)
    ops().audit.record(name, "console.sign_in", "console", "ok")
    return redirect(url_for("console.overview"), 303)


@bp.post("/console/sign-out")
def sign_out():
    """Sign out."""
    name = current_admin()
    _end_session()
    if name:
        ops().audit.record(name, "console.sign_out", "console", "ok")
    flash("You are signed out.", "ok")
    return redirect(url_for("console.sign_in"), 303)


def _end_session() -> None:
    """Forget the sign-in on the server, and start a fresh cookie (and CSRF token)."""
    session_id = session.get("sid")
    if isinstance(session_id, str):
        sessions().end(session_id)
    session.clear()
    g.console_admin = None
