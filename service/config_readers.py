"""How each configuration variable is read and checked (the table is in :mod:`service.config`).

Each reader takes the :class:`~service.envreader.Env` (which knows whether this is the
sandbox) and returns the value or raises a ConfigError naming its variable.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from service import gateway
from service.envreader import ConfigError, Env
from service.storage import url_problem
from service.verification.policy import Limits, Policy, TestNumber

log = logging.getLogger(__name__)

SANDBOX_CLIENT_KEY = "sandbox-client-key"
SANDBOX_ADMIN_KEY = "sandbox-admin-key"
DEFAULT_URL = "https://json.aspsms.com"

# Sandbox mode is a developer's playground whose test suites start many verifications
# from one address to a few numbers: volume limits are relaxed there (the per-client limit,
# lockout, attempts and cooldowns are not). Explicit values always win.
SANDBOX_LIMIT = "100000 per hour"
MIN_KEY_LENGTH = 16  # keys and OTP_SECRET: at least 96 bits of a random base64 string
SERVICE_ID_PREFIX = "sv_"
_KEY_NAME = re.compile(r"\A[A-Za-z0-9_.@-]{1,64}\Z")
_WORD = re.compile(r"\A[A-Za-z0-9_.-]{1,64}\Z")
_TEST_NUMBER = re.compile(r"(\+[1-9]\d{6,14})=([A-Za-z0-9]{4,12})@(\d{4}-\d{2}-\d{2})")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_keys(name: str, raw: str) -> dict[str, str]:
    """``name:key`` pairs separated by commas; every key at least MIN_KEY_LENGTH long."""
    keys: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        key_name, sep, key = item.partition(":")
        if not sep or not _KEY_NAME.match(key_name) or not key or re.search(r"\s", key):
            raise ConfigError(name, "must be name:key pairs separated by commas")
        if key_name in keys:
            raise ConfigError(name, f"the key name {key_name!r} appears twice")
        if name == "OTP_API_KEYS" and key_name.startswith(SERVICE_ID_PREFIX):
            # a default-service key's name is the owner of its verifications, as a managed
            # service's id is of its: a name like an id would share that service's
            raise ConfigError(name, f"a key name must not begin with {SERVICE_ID_PREFIX!r} "
                                    "(the prefix of services' ids)")
        if key in keys.values():
            raise ConfigError(name, f"the key of {key_name!r} is used twice")
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigError(name, f"the key named {key_name!r} is shorter than "
                                    f"{MIN_KEY_LENGTH} characters")
        keys[key_name] = key
    return keys


def gateway_url(env: Env) -> str:
    url = env.get("ASPSMS_URL", DEFAULT_URL).rstrip("/")
    problem = gateway.url_problem(url)
    if problem:
        raise ConfigError("ASPSMS_URL", problem)
    return url


def gateway_timeout(env: Env) -> float:
    """Seconds per gateway call; gunicorn's own timeouts are set above it."""
    return env.number("ASPSMS_TIMEOUT", 10.0, 0.0, 120.0)


def affiliate_id(env: Env) -> str | None:
    value = env.get("ASPSMS_AFFILIATE_ID")
    if value is not None and not _WORD.match(value):
        raise ConfigError("ASPSMS_AFFILIATE_ID", "must be 1-64 letters, digits, '-', '_' or '.'")
    return value


def public_url(env: Env) -> str | None:
    url = env.get("OTP_PUBLIC_URL")
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError("OTP_PUBLIC_URL", "must be an http(s) base URL without a query")
    if len(url.rstrip("/")) > 80:
        # Notification URLs must stay within the gateway's 200 characters.
        raise ConfigError("OTP_PUBLIC_URL", "must be at most 80 characters")
    return url.rstrip("/")


def redis_url(env: Env) -> str | None:
    url = env.get("REDIS_URL")
    if url is None:
        if env.sandbox:
            return None
        # an in-process store would exist once per worker and replica, each with its own
        # limits and budgets
        raise ConfigError("REDIS_URL", "is required outside sandbox mode (ASPSMS_USERKEY "
                                       "is set); the embedded store is for the sandbox only")
    problem = url_problem(url)
    if problem:
        raise ConfigError("REDIS_URL", problem)
    return url


def originator(env: Env) -> str:
    value = env.get("ASPSMS_ORIGINATOR", "Verify" if env.sandbox else None)
    if value is None:
        raise ConfigError("ASPSMS_ORIGINATOR", "is required outside sandbox mode")
    return _held_to_rule(Policy, "originator", "ASPSMS_ORIGINATOR", value)


def countries(env: Env) -> frozenset[str]:
    raw = env.get("OTP_ALLOWED_COUNTRIES", "")
    codes = frozenset(c.strip().upper() for c in re.split(r"[,;\s]+", raw) if c.strip())
    unknown = sorted(codes - phonenumbers.SUPPORTED_REGIONS)
    if unknown:
        raise ConfigError("OTP_ALLOWED_COUNTRIES", f"unknown country code {unknown[0]!r}")
    return codes


def region(env: Env) -> str | None:
    region = env.get("OTP_DEFAULT_REGION")
    if region is None:
        return None
    if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError("OTP_DEFAULT_REGION", f"unknown country code {region!r}")
    return region.upper()


def parse_test_numbers(raw: str | None, today: date | None = None) -> dict[str, TestNumber]:
    """``+41790000000=123456@2027-01-31`` entries; expired ones are dropped with a warning."""
    numbers: dict[str, TestNumber] = {}
    today = today or date.today()
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        match = _TEST_NUMBER.fullmatch(item.strip())
        try:
            expires = date.fromisoformat(match.group(3)) if match else None
        except ValueError:
            expires = None
        if not match or expires is None:
            raise ConfigError("OTP_TEST_NUMBERS",
                              "entries must look like +41790000000=123456@2027-01-31")
        if expires < today:
            log.warning("OTP_TEST_NUMBERS: an entry expired on %s and is ignored", expires)
            continue
        numbers[match.group(1)] = TestNumber(match.group(1), match.group(2), expires)
    return numbers


def secret(env: Env) -> bytes:
    secret = env.get("OTP_SECRET")
    if secret is None:
        if not env.sandbox:
            raise ConfigError("OTP_SECRET", "is required outside sandbox mode")
        return secrets.token_bytes(32)
    if len(secret) < MIN_KEY_LENGTH:
        raise ConfigError("OTP_SECRET", f"must be at least {MIN_KEY_LENGTH} characters")
    return secret.encode()


def keys(name: str, sandbox_default: str) -> Callable[[Env], dict[str, str]]:
    def read(env: Env) -> dict[str, str]:
        raw = env.get(name, sandbox_default if env.sandbox else None)
        if raw is None:
            raise ConfigError(name, "is required outside sandbox mode")
        return parse_keys(name, raw)
    return read


def log_level(env: Env) -> str:
    level = env.get("LOG_LEVEL", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError("LOG_LEVEL", f"must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return level


def userkey(env: Env) -> str:
    value = env.get("ASPSMS_USERKEY")
    if value is None and env.given("ASPSMS_USERKEY"):
        raise ConfigError("ASPSMS_USERKEY", "is empty")
    return value or ""


def password(env: Env) -> str:
    if env.sandbox:
        return ""
    password = env.get("ASPSMS_PASSWORD")
    if password is None:
        raise ConfigError("ASPSMS_PASSWORD", "is required when ASPSMS_USERKEY is set")
    return password


def _held_to_rule(model, name: str, variable: str, value: Any) -> Any:
    problem = model.problem(name, value)
    if problem:
        raise ConfigError(variable, problem)
    return value


def checked(model, name: str, variable: str,
            parse: Callable[[Env, str], Any] = Env.get) -> Callable[[Env], Any]:
    """A reader for a Policy or Limits field: ``variable`` parsed (text by default), the
    field's own default when unset, held to the field's own rule."""
    def read(env: Env) -> Any:
        value = parse(env, variable)
        return _held_to_rule(model, name, variable,
                             model.default(name) if value is None else value)
    return read


def limit(name: str, variable: str) -> Callable[[Env], str]:
    relaxed = name != "per_client"

    def read(env: Env) -> str:
        value = env.get(variable, SANDBOX_LIMIT if env.sandbox and relaxed else None)
        return _held_to_rule(Limits, name, variable, value or Limits.default(name))
    return read
