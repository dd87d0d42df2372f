"""Configuration: every variable of the contract, read and validated once at start-up.

Sandbox mode is decided here and nowhere else: it is on exactly when no ASPSMS userkey is
configured. A bad value raises :class:`ConfigError` whose message is one line naming the
variable, so a misconfiguration stops start-up instead of surfacing later as a 500.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlsplit

import phonenumbers
from limits import parse_many

from service.gateway.originators import originator_kind
from service.verification import messages
from service.verification.codes import validate_mask

log = logging.getLogger(__name__)

SANDBOX_CLIENT_KEY = "sandbox-client-key"
SANDBOX_ADMIN_KEY = "sandbox-admin-key"
DEFAULT_URL = "https://json.aspsms.com"

# Defaults for the abuse limits; the README's table repeats them with the reasoning.
DEFAULT_LIMITS = {
    "OTP_LIMIT_START_PER_PHONE": "5 per hour;10 per day",
    "OTP_LIMIT_START_PER_IP": "100 per hour;1000 per day",
    "OTP_LIMIT_CHECK_PER_PHONE": "30 per hour",
    "OTP_LIMIT_PER_CLIENT": "6000 per minute",
    "OTP_BUDGET_PER_PREFIX": "50 per hour",
    "OTP_BUDGET_PER_COUNTRY": "1000 per hour",
    "OTP_BUDGET_GLOBAL": "5000 per hour;50000 per day",
}
# Sandbox mode is a developer's playground whose test suites start many verifications
# from one address to a few numbers: volume limits are relaxed there (lockout, attempts
# and cooldowns are not). Explicit values always win.
SANDBOX_LIMITS = {name: "100000 per hour" for name in DEFAULT_LIMITS
                  if name != "OTP_LIMIT_PER_CLIENT"}
SECRET_VARIABLES = (
    "ASPSMS_USERKEY", "ASPSMS_PASSWORD", "OTP_API_KEYS", "OTP_ADMIN_KEYS", "OTP_SECRET",
)
_KEY_NAME = re.compile(r"\A[A-Za-z0-9_.@-]{1,64}\Z")
_TEST_NUMBER = re.compile(r"(\+[1-9]\d{6,14})=([A-Za-z0-9]{4,12})@(\d{4}-\d{2}-\d{2})")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class TestNumber:
    phone: str
    code: str
    expires: date


@dataclass(frozen=True)
class Settings:
    sandbox: bool
    aspsms_userkey: str
    aspsms_password: str = field(repr=False)
    aspsms_originator: str
    aspsms_url: str
    aspsms_affiliate_id: str | None
    aspsms_timeout: float
    redis_url: str | None = field(repr=False)  # may hold a password
    redis_timeout: float
    api_keys: Mapping[str, str] = field(repr=False)
    admin_keys: Mapping[str, str] = field(repr=False)
    secret: bytes = field(repr=False)
    public_url: str | None
    code_mask: str
    validity_minutes: int
    max_attempts: int
    resend_cooldown: int
    max_sends: int
    test_numbers: Mapping[str, TestNumber] = field(repr=False)
    allowed_countries: frozenset[str]
    default_region: str | None
    allow_voip: bool
    message_template: str | None
    limit_start_per_phone: str
    limit_start_per_ip: str
    limit_check_per_phone: str
    limit_per_client: str
    max_failures_per_phone: int
    budget_per_prefix: str
    budget_per_country: str
    budget_global: str
    trusted_proxies: int
    sms_enabled: bool
    log_level: str


class _Env:
    """Reads raw values, resolving the ``NAME_FILE`` variants of secret variables."""

    def __init__(self, environ: Mapping[str, str], sandbox: bool = False):
        self.environ = environ
        self.sandbox = sandbox

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.environ.get(name)
        file_name = self.environ.get(f"{name}_FILE")
        if value not in (None, "") and file_name:
            raise ConfigError(name, f"set both {name} and {name}_FILE; choose one")
        if file_name and name in SECRET_VARIABLES:
            try:
                with open(file_name, encoding="utf-8") as handle:
                    return handle.read().strip()
            except OSError as e:
                raise ConfigError(f"{name}_FILE", f"cannot read {file_name}: {e.strerror}") from e
        if value is None or value.strip() == "":
            return default
        return value.strip()

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, f"must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(name, f"must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(name, f"must be a number of seconds, got {raw!r}") from None
        if not low < value <= high:
            raise ConfigError(name, f"must be more than {low} and at most {high}, got {raw}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.get(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ConfigError(name, f"must be true or false, got {raw!r}")

    def limit(self, name: str) -> str:
        defaults = SANDBOX_LIMITS if self.sandbox else {}
        raw = self.get(name, defaults.get(name, DEFAULT_LIMITS[name]))
        try:
            parsed = parse_many(raw)
        except ValueError:
            parsed = []
        if not parsed:
            raise ConfigError(name, f"must be limit notation like '5 per hour', got {raw!r}")
        return raw


def parse_keys(name: str, raw: str) -> dict[str, str]:
    """``name:key`` pairs separated by commas."""
    keys: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        key_name, sep, key = item.partition(":")
        if not sep or not _KEY_NAME.match(key_name) or not key or re.search(r"\s", key):
            raise ConfigError(name, "must be name:key pairs separated by commas")
        if key_name in keys:
            raise ConfigError(name, f"the key name {key_name!r} appears twice")
        if key in keys.values():
            raise ConfigError(name, f"the key of {key_name!r} is used twice")
        if len(key) < 16:
            log.warning("%s: the key named %r is shorter than 16 characters", name, key_name)
        keys[key_name] = key
    return keys


def _is_loopback(host: str | None) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _gateway_url(env: _Env) -> str:
    url = env.get("ASPSMS_URL", DEFAULT_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return url
    raise ConfigError("ASPSMS_URL", "must be an https:// URL (http:// only for loopback hosts)")


def _public_url(env: _Env) -> str | None:
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


def _originator(env: _Env, sandbox: bool) -> str:
    value = env.get("ASPSMS_ORIGINATOR", "Verify" if sandbox else None)
    if value is None:
        raise ConfigError("ASPSMS_ORIGINATOR", "is required outside sandbox mode")
    if originator_kind(value) is not None:
        return value
    raise ConfigError(
        "ASPSMS_ORIGINATOR", "must be up to 11 letters/digits or an E.164 number like +41791234567"
    )


def _countries(env: _Env) -> frozenset[str]:
    raw = env.get("OTP_ALLOWED_COUNTRIES", "")
    codes = frozenset(c.strip().upper() for c in re.split(r"[,;\s]+", raw) if c.strip())
    unknown = sorted(codes - phonenumbers.SUPPORTED_REGIONS)
    if unknown:
        raise ConfigError("OTP_ALLOWED_COUNTRIES", f"unknown country code {unknown[0]!r}")
    return codes


def _region(env: _Env) -> str | None:
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


def _mask(env: _Env) -> str:
    mask = env.get("OTP_CODE_MASK", "######")
    problem = validate_mask(mask)
    if problem:
        raise ConfigError("OTP_CODE_MASK", problem)
    return mask


def _template(env: _Env) -> str | None:
    template = env.get("OTP_MESSAGE_TEMPLATE")
    if template is not None and "<VERIFICATIONCODE>" not in template:
        raise ConfigError("OTP_MESSAGE_TEMPLATE", "must contain <VERIFICATIONCODE>")
    return template


def _secret(env: _Env, sandbox: bool) -> bytes:
    secret = env.get("OTP_SECRET")
    if secret is None:
        if not sandbox:
            raise ConfigError("OTP_SECRET", "is required outside sandbox mode")
        return secrets.token_bytes(32)
    if len(secret) < 16:
        raise ConfigError("OTP_SECRET", "must be at least 16 characters")
    return secret.encode()


def _client_keys(env: _Env, sandbox: bool) -> tuple[dict[str, str], dict[str, str]]:
    raw_api = env.get("OTP_API_KEYS", f"sandbox:{SANDBOX_CLIENT_KEY}" if sandbox else None)
    raw_admin = env.get("OTP_ADMIN_KEYS", f"sandbox-admin:{SANDBOX_ADMIN_KEY}" if sandbox else None)
    if raw_api is None:
        raise ConfigError("OTP_API_KEYS", "is required outside sandbox mode")
    if raw_admin is None:
        raise ConfigError("OTP_ADMIN_KEYS", "is required outside sandbox mode")
    api, admin = parse_keys("OTP_API_KEYS", raw_api), parse_keys("OTP_ADMIN_KEYS", raw_admin)
    if set(api.values()) & set(admin.values()):
        raise ConfigError("OTP_ADMIN_KEYS", "an admin key must not also be a client key")
    return api, admin


def _credentials(env: _Env) -> tuple[bool, str, str]:
    userkey = env.get("ASPSMS_USERKEY")
    if userkey is None:
        return True, "", ""
    password = env.get("ASPSMS_PASSWORD")
    if password is None:
        raise ConfigError("ASPSMS_PASSWORD", "is required when ASPSMS_USERKEY is set")
    return False, userkey, password


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the whole configuration; raise ConfigError on the first problem."""
    env = _Env(os.environ if environ is None else environ)
    sandbox, userkey, password = _credentials(env)
    env.sandbox = sandbox
    api_keys, admin_keys = _client_keys(env, sandbox)
    settings = Settings(
        sandbox=sandbox,
        aspsms_userkey=userkey,
        aspsms_password=password,
        aspsms_originator=_originator(env, sandbox),
        aspsms_url=_gateway_url(env),
        aspsms_affiliate_id=env.get("ASPSMS_AFFILIATE_ID"),
        aspsms_timeout=env.number("ASPSMS_TIMEOUT", 10.0, 0.0, 120.0),
        redis_url=env.get("REDIS_URL"),
        redis_timeout=env.number("REDIS_TIMEOUT", 1.0, 0.0, 30.0),
        api_keys=api_keys,
        admin_keys=admin_keys,
        secret=_secret(env, sandbox),
        public_url=_public_url(env),
        code_mask=_mask(env),
        validity_minutes=env.integer("OTP_VALIDITY_MINUTES", 10, 1, 60),
        max_attempts=env.integer("OTP_MAX_ATTEMPTS", 5, 1, 10),
        resend_cooldown=env.integer("OTP_RESEND_COOLDOWN", 30, 0, 3600),
        max_sends=env.integer("OTP_MAX_SENDS", 5, 1, 10),
        test_numbers=parse_test_numbers(env.get("OTP_TEST_NUMBERS")),
        allowed_countries=_countries(env),
        default_region=_region(env),
        allow_voip=env.boolean("OTP_ALLOW_VOIP", False),
        message_template=_template(env),
        limit_start_per_phone=env.limit("OTP_LIMIT_START_PER_PHONE"),
        limit_start_per_ip=env.limit("OTP_LIMIT_START_PER_IP"),
        limit_check_per_phone=env.limit("OTP_LIMIT_CHECK_PER_PHONE"),
        limit_per_client=env.limit("OTP_LIMIT_PER_CLIENT"),
        max_failures_per_phone=env.integer("OTP_MAX_FAILURES_PER_PHONE", 10, 1, 100),
        budget_per_prefix=env.limit("OTP_BUDGET_PER_PREFIX"),
        budget_per_country=env.limit("OTP_BUDGET_PER_COUNTRY"),
        budget_global=env.limit("OTP_BUDGET_GLOBAL"),
        trusted_proxies=env.integer("OTP_TRUSTED_PROXIES", 0, 0, 10),
        sms_enabled=env.boolean("OTP_SMS_ENABLED", True),
        log_level=(env.get("LOG_LEVEL", "INFO") or "INFO").upper(),
    )
    _warn_if_template_costs_more(settings)
    return settings


def _warn_if_template_costs_more(settings: Settings) -> None:
    """A template is the operator's choice, but one that costs more than one SMS is said."""
    if settings.message_template is None:
        return
    encoding, parts = messages.longest_cost(None, settings.validity_minutes,
                                            settings.message_template)
    if (encoding, parts) != ("GSM-7", 1):
        log.warning("OTP_MESSAGE_TEMPLATE: each SMS goes as %s in %d part(s), each billed as "
                    "one SMS (at the longest code and OTP_VALIDITY_MINUTES); one GSM-7 part "
                    "holds 160 characters of the GSM 7-bit alphabet", encoding, parts)
