"""Structured logs: one JSON object per line, and a masking filter every line passes.

The filter sits on the root logger's handlers, so it sees every record that is written,
at every level and from every library (docs/security.md 6). It removes the configured secrets
(keys, passwords), the value of any field named like a code, password, key or token, and
masks every run of seven or more digits that could be a phone number. Text is read as a
URL would be: percent-escapes of printable ASCII are decoded first (repeatedly, so
``%252B41…`` too) and ``+`` may stand for a space between digit groups, so a number or key
in a path or query is caught like plain text. JSON encoding (with
``ensure_ascii``) turns a newline or U+2028 in a value into an escape, so a value can never
start a line of its own.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context
from gunicorn import glogging
from gunicorn.instrument.statsd import Statsd

from service.config import ConfigError, Settings

REDACTED = "[redacted]"
# Phone-like: 7+ digits, optionally after "+", with spaces, dashes or parentheses between
# them ("+41 79 123 45 67"); a token of its own, so digits inside hex ids stay readable.
# "+" also separates groups: a query string encodes a space as "+".
_PHONE = re.compile(r"(?<![A-Za-z0-9])\+?\(?\d(?:(?:[ \-+]|\) ?|\()?\d){6,}(?![A-Za-z0-9])")
# Escapes of printable ASCII only: a decoded %0A or %E2%80%A8 could break a line.
_PRINTABLE_ESCAPE = re.compile(r"%(2[0-9A-Fa-f]|[3-6][0-9A-Fa-f]|7[0-9A-Ea-e])")
_DECODE_ROUNDS = 4  # %25 nested this deep still decodes
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SENSITIVE = (r"code|verification_?code|unlock_?code|password|passwd|secret|api_?keys?|"
              r"userkey|authorization|token")
# (not "[redacted]" again: a record passed to two handlers is masked twice)
_SENSITIVE_FIELD = re.compile(
    rf"(?i)\b({_SENSITIVE})\b([\"']?\s*[:=]\s*[\"']?)(?!\[redacted\])([^\s\"',;&}}\]]+)")
_SENSITIVE_NAME = re.compile(rf"(?i)^({_SENSITIVE})$")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[^\s\"',;]+")
# a runtime API key (service.tenants.keys): not configured, so known by its shape
_RUNTIME_KEY = re.compile(r"\bsk_[A-Za-z0-9_-]{43}")
# Attributes every LogRecord has; anything else was passed as ``extra=`` and is output.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime"}


def _mask_phone(match: re.Match) -> str:
    """``+41 79 123 45 67`` → ``+41*******67``: the country and the last two digits."""
    text = match.group(0)
    if _ISO_DATE.fullmatch(text):
        return text
    digits = re.sub(r"\D", "", text)
    keep = 2 if len(digits) >= 9 else 0
    plus = "+" if text.lstrip("(").startswith("+") else ""
    return plus + digits[:keep] + "*" * (len(digits) - keep - 2) + digits[-2:]


class MaskingFilter(logging.Filter):
    """Rewrites a record in place so that no handler after it sees a secret."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        # Longest first, so a secret containing another is removed whole.
        values = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, values))) if values else None

    def mask(self, text: str) -> str:
        for _ in range(_DECODE_ROUNDS):
            if "%" not in text:
                break
            text = _PRINTABLE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        text = _RUNTIME_KEY.sub(REDACTED, text)
        text = _SENSITIVE_FIELD.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
        return _PHONE.sub(_mask_phone, text)

    def _value(self, name: str, value: Any) -> Any:
        if _SENSITIVE_NAME.match(name):
            return REDACTED
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {k: self._value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._value("", v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self.mask(str(value))

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.mask(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        for name in set(vars(record)) - _STANDARD:
            setattr(record, name, self._value(name, getattr(record, name)))
        return True


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record written while it runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id") and has_request_context():
            record.request_id = g.get("request_id")
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        event: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event.update({k: v for k, v in vars(record).items()
                      if k not in _STANDARD and (k != "request_id" or v)})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            event["exception"] = record.exc_text
        if record.stack_info:
            event["stack"] = record.stack_info
        return json.dumps(event, default=str)


class JsonHandler(logging.StreamHandler):
    """JSON lines to standard output (or ``stream``), masked.

    Without a fixed stream it looks ``sys.stdout`` up at each write, so a replaced stdout
    (pytest's capture, a redirected daemon) is followed.
    """

    def __init__(self, stream=None, secrets: Iterable[str] = ()):
        super().__init__(stream)  # sets self.stream, to stderr when None; undone below
        self._fixed = stream
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())
        self.addFilter(MaskingFilter(secrets))

    @property
    def stream(self):
        return self._fixed if self._fixed is not None else sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        self._fixed = value


def secret_values(settings: Settings) -> list[str]:
    """Every configured credential: what the filter removes wherever it appears."""
    keys = settings.keys
    values = [settings.gateway.password, settings.gateway.userkey,
              settings.secret.decode(errors="ignore")]
    return values + list(keys.clients.values()) + list(keys.admins.values())


def level_of(name: str) -> int:
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise ConfigError("LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {name!r}")
    return level


def install(level: int | str = logging.INFO, secrets: Iterable[str] = (),
            stream=None) -> JsonHandler:
    """Make a JSON handler the root's, and put the masking filter on every root handler."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, JsonHandler)]:
        root.removeHandler(handler)
    ours = JsonHandler(stream, secrets)
    masking = next(f for f in ours.filters if isinstance(f, MaskingFilter))
    for handler in root.handlers:
        for old in [f for f in handler.filters if isinstance(f, MaskingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(masking)
    root.addHandler(ours)
    root.setLevel(level_of(level) if isinstance(level, str) else level)
    return ours


def init_app(app, settings: Settings) -> None:
    install(settings.log_level, secret_values(settings))


class GunicornLogger(glogging.Logger):
    """gunicorn's logger, building access lines only when something consumes them.

    gunicorn builds the access line's fields for every request whenever a logging config is
    given, as ours is, and only then lets the level drop it: ~3 % of a worker's CPU (bench.spy)
    for a line nobody asked for (the app writes its own access event). Consumers:
    ``accesslog``, syslog (unless its access lines are not redirected there) and statsd
    (``--statsd-host``; gunicorn switches to its statsd logger only when no logger class
    is set, so this class becomes one then).
    """

    def __new__(cls, cfg):
        if cls is GunicornLogger and cfg.statsd_host:
            return _StatsdLogger(cfg)
        return super().__new__(cls)

    def access(self, resp, req, environ, request_time) -> None:
        cfg = self.cfg
        if (cfg.accesslog or cfg.statsd_host
                or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)):
            super().access(resp, req, environ, request_time)


class _StatsdLogger(GunicornLogger, Statsd):
    """GunicornLogger with gunicorn's statsd metrics (request timers, log counters)."""
