"""Injected gateway trouble (/_sim/faults, README.md): slow, failing or garbled answers."""

import json
from dataclasses import dataclass
from http import HTTPStatus

from .codes import canonical_operation, envelope

_KEYS = {"delay", "http_status", "non_json", "status_code", "endpoints", "count"}
_JSON = "application/json; charset=utf-8"
# What an IIS front end shows when the application behind it is down.
_HTML_PAGE = b"<html><head><title>Service Unavailable</title></head><body>Unavailable</body></html>"


@dataclass
class Fault:
    delay: float = 0.0
    http_status: int | None = None
    non_json: bool = False
    status_code: str | None = None
    endpoints: frozenset[str] | None = None  # None: every gateway operation
    remaining: int | None = None  # None: until cleared

    @classmethod
    def from_json(cls, spec) -> "Fault":
        """Validate a POST /_sim/faults body; raises ValueError naming the bad setting."""
        if not isinstance(spec, dict):
            raise ValueError("the fault must be a JSON object")
        if set(spec) - _KEYS:
            raise ValueError(f"unknown fault settings: {sorted(set(spec) - _KEYS)}")
        fault = cls(
            delay=_number(spec.get("delay", 0.0)),
            http_status=_http_status(spec.get("http_status")),
            non_json=_boolean(spec.get("non_json", False)),
            status_code=_status_code(spec.get("status_code")),
            endpoints=_endpoints(spec.get("endpoints")),
            remaining=_count(spec.get("count")),
        )
        if not (fault.delay or fault.replaces_answer):
            raise ValueError("give at least one of delay, http_status, non_json, status_code")
        return fault

    @property
    def replaces_answer(self) -> bool:
        """False for a pure delay: the gateway then answers normally (and changes state)."""
        return self.http_status is not None or self.non_json or self.status_code is not None

    def applies_to(self, operation: str) -> bool:
        return self.endpoints is None or operation in self.endpoints

    def answer(self) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) sent instead of the real answer."""
        status = self.http_status or 200
        if self.non_json:
            return status, "text/html; charset=utf-8", _HTML_PAGE
        if self.status_code is not None:
            return status, _JSON, json.dumps(envelope(self.status_code)).encode()
        return status, "text/plain; charset=utf-8", f"{status} {_phrase(status)}".strip().encode()

    def to_json(self) -> dict:
        return {
            "delay": self.delay,
            "http_status": self.http_status,
            "non_json": self.non_json,
            "status_code": self.status_code,
            "endpoints": sorted(self.endpoints) if self.endpoints is not None else None,
            "count": self.remaining,
        }


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a status number without a standard name, e.g. 599
        return ""


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 600:
        raise ValueError("delay must be a number of seconds between 0 and 600")
    return float(value)


def _http_status(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise ValueError("http_status must be an integer between 200 and 599")
    return value


def _boolean(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError("non_json must be true or false")
    return value


def _status_code(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.lstrip("-").isdigit():
        raise ValueError('status_code must be a gateway status code such as "5"')
    return value


def _endpoints(value) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ValueError("endpoints must be a non-empty list of operation names")
    names = [canonical_operation(name) if isinstance(name, str) else None for name in value]
    if None in names:
        raise ValueError(f"endpoints must name gateway operations: {value}")
    return frozenset(names)


def _count(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("count must be a positive integer")
    return value
