"""The one error shape: every refusal is a ServiceError rendered as RFC 9457 problem+json.

Kept free of Flask so that the domain can raise these; the HTTP layer renders them.
"""

from __future__ import annotations

import time
from typing import Any

PROBLEM_BASE = "https://aspsms-verify.dev/problems/"


class ServiceError(Exception):
    status = 500
    code = "internal_error"
    title = "Internal error"
    # True when what failed may still have happened (a send or check whose gateway answer
    # never came): an idempotent retry must get this answer again, not a second try
    outcome_unknown = False

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None,
                 **extensions: Any):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extensions = extensions

    def to_problem(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extensions,
        }


def refusal_headers(retry_after: float, limit: int | None = None) -> dict[str, str]:
    """A 429's headers: Retry-After in whole seconds (at least one) and, for a counted limit,
    the RateLimit headers naming it (the same for the domain's limits and Flask-Limiter's)."""
    seconds = max(1, int(retry_after + 0.999))
    headers = {"Retry-After": str(seconds)}
    if limit is not None:
        headers.update({"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(int(time.time()) + seconds)})
    return headers


class RateLimited(ServiceError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str, retry_after: float, reason: str,
                 limit: int | None = None):
        headers = refusal_headers(retry_after, limit)
        super().__init__(detail, headers=headers, reason=reason,
                         retry_after=int(headers["Retry-After"]))


class StoreUnavailable(ServiceError):
    status, code, title = 503, "store_unavailable", "State store unavailable"
