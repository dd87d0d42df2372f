"""The one way a view reaches the app's services: ``services()``, typed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:  # for the annotation only: the factory imports this layer, not back
    from service.app import Services

EXTENSION = "otp"


def services() -> Services:
    """What :func:`service.app.build_services` built for this app, registered once."""
    return current_app.extensions[EXTENSION]
