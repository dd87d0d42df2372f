"""Twilio's error body for every refusal under /v2: ``code``, ``message``, ``more_info``,
``status`` (and ``details``, which the SDKs hand to the caller as ``e.details``).

Refusals are translated from the contract's problems, so that the domain raises what it
raises on /otp/* and an idempotent replay (which stores the problem) is translated the same
way. Twilio's SDKs read an answer with ``type``, ``title``, ``status`` and ``code`` as an
RFC 9457 problem, so none of these bodies carries ``type`` or ``title``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, json, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from service.errors import ServiceError, StoreUnavailable
from service.http import problems
from service.storage import STORE_ERRORS

log = logging.getLogger(__name__)

MORE_INFO = "https://www.twilio.com/docs/errors/{}"
PREFIX = "/v2/"

# our problem code -> (HTTP status, Twilio code), where no field or reason decides
BY_PROBLEM = {
    "invalid_phone": (400, 60200),
    "phone_not_sms_capable": (400, 60205),  # "SMS is not supported by landline phone number"
    "country_not_allowed": (403, 60605),  # "Verification delivery attempt blocked" (geo)
    "invalid_code": (400, 60200),
    "validation_failed": (400, 60200),
    "idempotency_key_reused": (400, 60200),
    "idempotency_in_progress": (429, 60212),  # "Too many concurrent requests for phone number"
    "check_in_progress": (429, 60212),
    "verification_not_found": (404, 20404),
    "verification_closed": (404, 20404),
    "resend_required": (404, 20404),
    "sms_disabled": (400, 60223),  # "Delivery channel disabled: SMS"
    "unauthorized": (401, 20003),
    "forbidden": (401, 20003),
}
# a 429's reason -> Twilio code; any other limit is Twilio's generic 20429
BY_REASON = {"max_sends": 60203, "start_per_phone": 60203,
             "phone_locked": 60202, "check_per_phone": 60202}
BY_STATUS = {401: 20003, 403: 20003, 404: 20404, 405: 20004, 429: 20429, 503: 20503}
# what a field of the contract is called in Twilio's requests
FIELDS = {"phone": "To", "code": "Code", "locale": "Locale", "end_user_ip": "RateLimits",
          "friendly_name": "CustomFriendlyName", "Idempotency-Key": "I-Twilio-Idempotency-Token"}

SERVICE_FIELDS = {"name": "FriendlyName", "friendly_name": "FriendlyName",
                  "code_mask": "CodeLength"}


class TwilioError(Exception):
    """A refusal only this layer makes (a parameter Twilio has and we do not honour)."""

    def __init__(self, status: int, code: int, message: str, *,
                 details: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers or {}


def invalid_parameter(name: str, why: str = "") -> TwilioError:
    return TwilioError(400, 60200, f"Invalid parameter: {name}" + (f" ({why})" if why else ""))


def not_found(what: str | None = None, **details: Any) -> TwilioError:
    """Twilio's 404 for a resource path; ``details`` say more (e.g. verification_status)."""
    message = f"The requested resource {what or request.path} was not found"
    if "verification_status" in details:
        message += f" (verification_status: {details['verification_status']})"
    return TwilioError(404, 20404, message, details=details)


def twilio_response(status: int, code: int, message: str, details: dict[str, Any],
                    headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message,
                            "more_info": MORE_INFO.format(code), "status": status}
    if details:
        body["details"] = details
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="aspsms-verify"'
    return response


def from_problem(problem: dict[str, Any], headers: dict[str, str] | None = None, *,
                 checking: bool = False) -> Response:
    """The Twilio answer for one of the contract's problems. ``checking``: the request was a
    VerificationCheck, where a verification ended by too many attempts is Twilio's 60202;
    every other ended verification is its 404, with our verification_status carried."""
    problems.record(problem)
    code, status = problem.get("code", ""), problem["status"]
    details = {"problem": code}
    for extension in ("verification_status", "reason", "resend_required", "retry_after"):
        if extension in problem:
            details[extension] = problem[extension]
    twilio_status, twilio_code = BY_PROBLEM.get(code) or (
        status, BY_STATUS.get(status, 20500 if status >= 500 else 60200))
    message = problem.get("detail") or problem.get("title", "")
    if code == "rate_limited":
        twilio_code = BY_REASON.get(problem.get("reason", ""), 20429)
        if problem.get("reason", "").endswith("_budget"):  # a pumping breaker: Fraud Guard's
            twilio_status, twilio_code = 403, 60410
    elif code in ("validation_failed", "invalid_phone", "invalid_code"):
        field = {"invalid_phone": "phone", "invalid_code": "code"}.get(code) or next(
            iter(problem.get("errors") or {}), "")
        names = SERVICE_FIELDS if request.endpoint == "twilio.create_service" else FIELDS
        message = f"Invalid parameter: {names.get(field, field)} ({message})"
    elif code == "idempotency_key_reused":  # the domain's words name /otp's header
        message = (f"Invalid parameter: {FIELDS['Idempotency-Key']} (this token was used "
                   "with a different request)")
    elif code == "verification_closed":
        if checking and problem.get("verification_status") == "max_attempts_reached":
            twilio_status, twilio_code, message = 429, 60202, "Max check attempts reached"
        else:
            message = (f"The requested resource {request.path} was not found "
                       f"(verification_status: {problem.get('verification_status')})")
    elif twilio_code == 20404:
        message = f"The requested resource {request.path} was not found" + (
            "" if code == "not_found" else f" ({message})")
    return twilio_response(twilio_status, twilio_code, message, details, headers)


def _twilio_error(e: TwilioError) -> Response:
    problems.record({"code": f"twilio_{e.code}"})
    return twilio_response(e.status, e.code, e.message, e.details, e.headers)


def _service_error(e: ServiceError) -> Response:
    return from_problem(e.to_problem(), e.headers,
                        checking=request.endpoint == "twilio.create_verification_check")


def _store_error(e: Exception) -> Response:
    log.error("state store unavailable: %s", type(e).__name__)
    return _service_error(StoreUnavailable("The state store is unavailable; nothing was done."))


def _http_error(e: HTTPException) -> Response:
    """Werkzeug's and Flask-Limiter's refusals, with their headers (Allow, Retry-After)."""
    rendered = problems.http_problem(e)
    problem = json.loads(rendered.get_data())
    response = from_problem(problem)
    for name, value in rendered.headers.items():
        if name.lower() not in ("content-type", "content-length"):
            response.headers.setdefault(name, value)
    return response


def _unexpected(e: Exception) -> Response:
    log.exception("unhandled error")
    return twilio_response(500, 20500, "Internal server error", {})


def register(bp: Blueprint) -> None:
    """Twilio's bodies for the blueprint's views (once, where the blueprint is made)."""
    bp.register_error_handler(TwilioError, _twilio_error)
    bp.register_error_handler(ServiceError, _service_error)
    for error in STORE_ERRORS:
        bp.register_error_handler(error, _store_error)
    bp.register_error_handler(HTTPException, _http_error)
    bp.register_error_handler(Exception, _unexpected)


def init_app(app: Flask) -> None:
    """Routing errors never reach a blueprint's handlers: for /v2 paths no view matched,
    the app's handler of each answers as Twilio does; elsewhere the one it had (the
    console's), so this runs after every other init_app."""
    for routing_error in (NotFound, MethodNotAllowed):
        previous = (app.error_handler_spec[None][routing_error.code].get(routing_error)
                    or problems.http_problem)

        def handle(e: HTTPException, previous=previous) -> Response:
            return _http_error(e) if request.path.startswith(PREFIX) else previous(e)

        app.register_error_handler(routing_error, handle)
