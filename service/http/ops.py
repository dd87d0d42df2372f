"""Operations: liveness, readiness, the OpenAPI document and Prometheus metrics."""

from __future__ import annotations

import functools
from importlib import resources

import yaml
from flask import Blueprint, Response, jsonify

from service import metrics
from service.errors import ServiceError
from service.http.context import services

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers; no dependency is consulted."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Readiness: the state store answers within its timeout."""
    found = services()
    checks = {"store": "ok", "configuration": "ok"}
    try:
        found.store.ping()
    except ServiceError:
        checks["store"] = "unavailable"
    body = {"status": "ready" if checks["store"] == "ok" else "not_ready", "checks": checks}
    if found.startup_notes:
        body["notes"] = found.startup_notes
    return jsonify(body), 200 if checks["store"] == "ok" else 503


@bp.get("/openapi.yaml")
def openapi():
    """The OpenAPI 3.1 description of this service, as it runs."""
    sandbox = services().settings.sandbox
    return Response(openapi_document(sandbox), mimetype="application/yaml")


@functools.cache
def openapi_document(sandbox: bool) -> str:
    """The document; outside sandbox mode without the operations marked x-sandbox-only
    (their routes do not exist there), so generated clients and tests see only real ones."""
    text = resources.files("service").joinpath("openapi.yaml").read_text(encoding="utf-8")
    if sandbox:
        return text
    spec = yaml.safe_load(text)
    for path, item in list(spec["paths"].items()):
        if any(isinstance(op, dict) and op.get("x-sandbox-only") for op in item.values()):
            del spec["paths"][path]
    used = {tag for item in spec["paths"].values() for op in item.values()
            if isinstance(op, dict) for tag in op.get("tags", ())}
    spec["tags"] = [tag for tag in spec.get("tags", []) if tag["name"] in used]
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus metrics in the text exposition format (summed over gunicorn workers)."""
    services().admin.credits.refresh_if_stale()
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)
