"""The baseline: the least a verification endpoint can do on this stack.

Each endpoint makes one Redis round trip and one loopback call to the simulator, under the
same gunicorn settings as the service (``gunicorn -c python:service.gunicorn_conf
'bench.baseline:create_app()'``). Its flows/s is the practical limit of Flask + gunicorn +
redis-py + requests on this machine; the service is measured as a fraction of it.
"""

from __future__ import annotations

import os
import secrets

import redis
import requests
from flask import Blueprint, Flask, current_app, jsonify, request
from requests.adapters import HTTPAdapter

TTL_SECONDS = 600
bp = Blueprint("baseline", __name__)


class Parts:
    """Redis and the gateway, built once per worker from the service's own variables."""

    def __init__(self, environ):
        self.store = redis.Redis.from_url(environ["REDIS_URL"], decode_responses=True,
                                          socket_timeout=5, max_connections=256)
        self.gateway = environ["ASPSMS_URL"]
        self.credentials = {"UserName": environ["ASPSMS_USERKEY"],
                            "Password": environ["ASPSMS_PASSWORD"]}
        # One pooled connection per thread, like the service's gateway session. By default
        # requests' own settings, as a minimal app has them: trust_env re-reads the proxy
        # environment on every call (~0.7 ms CPU each here). `--lean-baseline` turns that
        # off, as the service does, for a like-for-like comparison of that choice too.
        self.session = requests.Session()
        self.session.trust_env = environ.get("BENCH_BASELINE_TRUST_ENV", "1") != "0"
        pool = int(environ.get("GUNICORN_THREADS", "64"))
        self.session.mount("http://", HTTPAdapter(pool_maxsize=pool))

    def call(self, operation: str, **fields: str) -> str:
        """One gateway operation; its StatusCode."""
        answer = self.session.post(f"{self.gateway}/{operation}",
                                   json={**self.credentials, **fields}, timeout=10)
        answer.raise_for_status()
        return answer.json()["StatusCode"]


def _parts() -> Parts:
    return current_app.extensions["baseline"]


@bp.get("/healthz")
def healthz():
    """Liveness."""
    return jsonify(status="ok")


@bp.post("/start")
def start():
    """One SET, one SendTokenSMS."""
    phone, reference = request.get_json()["phone"], secrets.token_hex(8)
    _parts().store.set(f"bench:{phone}", reference, ex=TTL_SECONDS)
    status = _parts().call("SendTokenSMS", Recipients=phone, TokenReference=reference,
                           TokenMask="######", TokenValidity="10", MessageData="",
                           Originator="Verify")
    return jsonify(id=reference, sent=status == "1"), 201 if status == "1" else 502


@bp.post("/check")
def check():
    """One GET, one VerifyToken."""
    body = request.get_json()
    reference = _parts().store.get(f"bench:{body['phone']}")
    status = _parts().call("VerifyToken", PhoneNumber=body["phone"],
                           TokenReference=reference or "", VerificationCode=body["code"])
    return jsonify(valid=status == "1")


def create_app() -> Flask:
    app = Flask("baseline")
    app.extensions["baseline"] = Parts(os.environ)
    app.register_blueprint(bp)
    return app
