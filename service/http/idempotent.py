"""``@idempotent``: a client route whose retries with one Idempotency-Key replay its answer.

The view gets the validated body and returns what it did, typed
(:class:`~service.verification.idempotency.Answered`, and the verification it has in hand);
this decorator claims the key, records the answer or a final refusal, and renders. What is
recorded, and which refusals are final, is :mod:`service.verification.idempotency`'s.
A request that names a phone number has it on its access event, masked
(:mod:`service.http.observe`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from flask import Response, g, jsonify, request
from marshmallow import Schema

from service.errors import ServiceError
from service.http import schemas
from service.http.context import services
from service.http.observe import naming_phone, note_named_phone, note_phone
from service.http.problems import problem_response
from service.verification.idempotency import Answered, Recorded, Refused, replays
from service.verification.model import Verification

__all__ = ["Answered", "answer_once", "idempotent", "public"]

IDEMPOTENCY_KEY = re.compile(r"\A[\x21-\x7e]{1,255}\Z")
View = Callable[[dict[str, Any]], tuple[Answered, Verification]]
Render = Callable[[dict[str, Any], Answered, Verification], Response]
Refuse = Callable[[dict[str, Any], dict[str, str]], Response]


def public(verification: Verification) -> dict[str, Any]:
    """The contract's verification object, under the policy of the request's service."""
    return verification.public(g.tenant.policy.max_sends)


def idempotent(route: str, schema: Schema) -> Callable[[View], Callable[[], Response]]:
    def decorate(view: View) -> Callable[[], Response]:
        @functools.wraps(view)
        def wrapper() -> Response:
            body = schemas.load_json(schema)
            with naming_phone(body.get("phone")):
                return answer_once(route, body, view, key=request.headers.get("Idempotency-Key"))
        return wrapper
    return decorate


def answer_once(route: str, body: dict[str, Any], view: View, *, key: str | None,
                render: Render | None = None, refuse: Refuse = problem_response) -> Response:
    """Run ``view`` once per idempotency ``key`` (None: no key, it just runs) and render
    its answer, or replay the first one. ``render`` and ``refuse`` give the answer its face:
    the contract's by default, Twilio's for /v2 (:mod:`service.http.twilio`), over one store."""
    render = render or _render
    if key is None:
        return render(body, *view(body))
    if not IDEMPOTENCY_KEY.match(key):
        raise schemas.ValidationFailed("Idempotency-Key must be 1-255 visible ASCII characters.",
                                       errors={"Idempotency-Key": ["Invalid format."]})
    store = services().idempotency
    fingerprint = store.fingerprint(route, body)
    recorded = store.claim(g.client, key, fingerprint, service=g.tenant.id)
    if recorded is not None:
        return _replay(body, recorded, render, refuse)
    try:
        answered, verification = view(body)
    except ServiceError as e:
        if replays(e.status, e.outcome_unknown):
            store.record(g.client, key, fingerprint, Refused(e.to_problem(), e.headers),
                         service=g.tenant.id)
        else:
            store.release(g.client, key, service=g.tenant.id)
        raise
    except Exception:
        store.release(g.client, key, service=g.tenant.id)
        raise
    store.record(g.client, key, fingerprint, answered, service=g.tenant.id)
    return render(body, answered, verification)


def _replay(body: dict[str, Any], recorded: Recorded, render: Render,
            refuse: Refuse) -> Response:
    """A replay renders the verification as it is now; a refusal as it was."""
    if isinstance(recorded, Refused):
        note_named_phone(body.get("phone"))
        return refuse(recorded.problem, recorded.headers)
    verification = services().verifications.read(g.tenant, g.client,
                                                 recorded.verification_id)
    response = render(body, recorded, verification)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _render(body: dict[str, Any], answered: Answered, verification: Verification) -> Response:
    if "phone" in body:
        note_phone(verification.phone)
    rendered = public(verification)
    if answered.valid is not None:
        rendered = {"valid": answered.valid, **rendered}
    response = jsonify(rendered)
    response.status_code = answered.status
    return response
