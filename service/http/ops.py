"""Operations: liveness, readiness, the OpenAPI document and Prometheus metrics."""

from __future__ import annotations

from importlib import resources

from flask import Blueprint, Response, current_app, jsonify

from service import metrics
from service.errors import ServiceError

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers; no dependency is consulted."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Readiness: the state store answers within its timeout."""
    services = current_app.extensions["otp"]
    checks = {"store": "ok", "configuration": "ok"}
    try:
        services.store.ping()
    except ServiceError:
        checks["store"] = "unavailable"
    body = {"status": "ready" if checks["store"] == "ok" else "not_ready", "checks": checks}
    if services.startup_notes:
        body["notes"] = services.startup_notes
    return jsonify(body), 200 if checks["store"] == "ok" else 503


@bp.get("/openapi.yaml")
def openapi():
    """The OpenAPI 3.1 description of this service."""
    text = resources.files("service").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return Response(text, mimetype="application/yaml")


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus metrics in the text exposition format (summed over gunicorn workers)."""
    current_app.extensions["otp_credits"].refresh_if_stale()
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)
