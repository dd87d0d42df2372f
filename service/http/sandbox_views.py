"""Sandbox only: read what the in-process simulator "sent", to finish a flow by hand."""

from __future__ import annotations

from flask import Blueprint, jsonify

from service.http.auth import client_required
from service.http.context import services

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")


@bp.get("/messages")
@client_required
def messages():
    """The SMS the sandbox simulator received, newest last, with their codes."""
    simulator = services().simulator
    return jsonify(simulator.state.messages())
