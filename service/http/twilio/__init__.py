"""Twilio Verify v2 compatibility (issue 19): Twilio's SDKs work by changing one host name.

A thin translation over the verification domain: no decision is made here that /otp/* does
not make the same way. See :mod:`.views` for the routes.
"""

from __future__ import annotations

from flask import Flask

from service.http.twilio import errors, views


def init_app(app: Flask) -> None:
    app.register_blueprint(views.bp)
    app.register_blueprint(views.admin_bp)
    errors.init_app(app)
