"""Configuration: every variable of the contract, read and validated once at start-up.

Sandbox mode is decided here and nowhere else: it is on exactly when no ASPSMS userkey is
configured. Every bad value is reported at once, as a :class:`ConfigError` with one line per
variable, so a misconfiguration stops start-up instead of surfacing later as a 500. The
service reads every variable (:func:`load_settings`); an admin command only those it uses
(:func:`load_fields`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.config_readers import (
    DEFAULT_LIMITS,
    SANDBOX_ADMIN_KEY,
    SANDBOX_CLIENT_KEY,
    TestNumber,
    affiliate_id,
    countries,
    gateway_url,
    keys,
    limit,
    log_level,
    mask,
    originator,
    parse_test_numbers,
    password,
    public_url,
    redis_url,
    region,
    secret,
    template,
    userkey,
)
from service.envreader import Collector, ConfigError, Env
from service.verification import messages

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_LIMITS", "SANDBOX_ADMIN_KEY", "SANDBOX_CLIENT_KEY", "ConfigError",
           "Settings", "TestNumber", "load_fields", "load_settings", "parse_test_numbers"]


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


# Every Settings field but ``sandbox``, and how it is read: the table of the contract.
READERS: dict[str, Callable[[Env], Any]] = {
    "aspsms_userkey": userkey,
    "aspsms_password": password,
    "aspsms_originator": originator,
    "aspsms_url": gateway_url,
    "aspsms_affiliate_id": affiliate_id,
    "aspsms_timeout": lambda env: env.number("ASPSMS_TIMEOUT", 10.0, 0.0, 120.0),
    "redis_url": redis_url,
    "redis_timeout": lambda env: env.number("REDIS_TIMEOUT", 1.0, 0.0, 30.0),
    "api_keys": keys("OTP_API_KEYS", f"sandbox:{SANDBOX_CLIENT_KEY}"),
    "admin_keys": keys("OTP_ADMIN_KEYS", f"sandbox-admin:{SANDBOX_ADMIN_KEY}"),
    "secret": secret,
    "public_url": public_url,
    "code_mask": mask,
    "validity_minutes": lambda env: env.integer("OTP_VALIDITY_MINUTES", 10, 1, 60),
    "max_attempts": lambda env: env.integer("OTP_MAX_ATTEMPTS", 5, 1, 10),
    "resend_cooldown": lambda env: env.integer("OTP_RESEND_COOLDOWN", 30, 0, 3600),
    "max_sends": lambda env: env.integer("OTP_MAX_SENDS", 5, 1, 10),
    "test_numbers": lambda env: parse_test_numbers(env.get("OTP_TEST_NUMBERS")),
    "allowed_countries": countries,
    "default_region": region,
    "allow_voip": lambda env: env.boolean("OTP_ALLOW_VOIP", False),
    "message_template": template,
    "limit_start_per_phone": limit("OTP_LIMIT_START_PER_PHONE"),
    "limit_start_per_ip": limit("OTP_LIMIT_START_PER_IP"),
    "limit_check_per_phone": limit("OTP_LIMIT_CHECK_PER_PHONE"),
    "limit_per_client": limit("OTP_LIMIT_PER_CLIENT"),
    "max_failures_per_phone": lambda env: env.integer("OTP_MAX_FAILURES_PER_PHONE", 10, 1, 100),
    "budget_per_prefix": limit("OTP_BUDGET_PER_PREFIX"),
    "budget_per_country": limit("OTP_BUDGET_PER_COUNTRY"),
    "budget_global": limit("OTP_BUDGET_GLOBAL"),
    "trusted_proxies": lambda env: env.integer("OTP_TRUSTED_PROXIES", 0, 0, 10),
    "sms_enabled": lambda env: env.boolean("OTP_SMS_ENABLED", True),
    "log_level": log_level,
}
GATEWAY_FIELDS = ("aspsms_userkey", "aspsms_password", "aspsms_url", "aspsms_affiliate_id",
                  "aspsms_timeout")


def _environment(environ: Mapping[str, str] | None) -> Env:
    env = Env(os.environ if environ is None else environ)
    env.sandbox = not env.given("ASPSMS_USERKEY")  # a userkey file that is unreadable is no sandbox
    return env


def load_fields(fields: Iterable[str], environ: Mapping[str, str] | None = None, *,
                sandbox_allowed: bool = True) -> dict[str, Any]:
    """The given Settings fields (and ``sandbox``); every problem among them at once."""
    env, collect = _environment(environ), Collector()
    if env.sandbox and not sandbox_allowed:
        collect.errors.append(ConfigError("ASPSMS_USERKEY", "is required: this command "
                                                           "talks to the real gateway"))
        env.sandbox = False  # report what else the gateway would need, too
    values = {name: collect(lambda read=READERS[name]: read(env)) for name in fields}
    if {"api_keys", "admin_keys"} <= values.keys() and values["api_keys"] and values["admin_keys"]:
        if set(values["api_keys"].values()) & set(values["admin_keys"].values()):
            collect.errors.append(ConfigError("OTP_ADMIN_KEYS",
                                              "an admin key must not also be a client key"))
    collect.done()
    return {"sandbox": env.sandbox, **values}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the whole configuration; raise ConfigError listing every problem."""
    settings = Settings(**load_fields(READERS, environ))
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
