"""Configuration: every variable of the contract, read and validated once at start-up, into
the parts the application builds (the gateway client, the Redis connection, the keys, the
domain's Policy, Limits and PhonePolicy).

Sandbox mode is decided here and nowhere else: it is on exactly when no ASPSMS userkey is
configured. Every bad value is reported at once, as a :class:`ConfigError` with one line per
variable, so a misconfiguration stops start-up instead of surfacing later as a 500. The
service reads every variable (:func:`load_settings`); an admin command only the parts it
uses (:func:`load_parts`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from service import storage
from service.config_readers import (
    SANDBOX_ADMIN_KEY,
    SANDBOX_CLIENT_KEY,
    TestNumber,
    affiliate_id,
    checked,
    countries,
    gateway_timeout,
    gateway_url,
    keys,
    limit,
    log_level,
    originator,
    parse_test_numbers,
    password,
    public_url,
    redis_url,
    region,
    secret,
    userkey,
)
from service.envreader import Collector, ConfigError, Env
from service.gateway import AspsmsClient
from service.verification import messages
from service.verification.phones import PhonePolicy
from service.verification.policy import Limits, Policy

log = logging.getLogger(__name__)

__all__ = ["SANDBOX_ADMIN_KEY", "SANDBOX_CLIENT_KEY", "ConfigError", "GatewaySettings", "Keys",
           "RedisSettings", "Settings", "TestNumber", "load_parts", "load_settings",
           "parse_test_numbers"]


@dataclass(frozen=True)
class GatewaySettings:
    url: str
    userkey: str
    password: str = field(repr=False)
    affiliate_id: str | None
    timeout: float

    def client(self, **options) -> AspsmsClient:
        return AspsmsClient(self.url, self.userkey, self.password, timeout=self.timeout,
                            affiliate_id=self.affiliate_id, **options)


@dataclass(frozen=True)
class RedisSettings:
    url: str | None = field(repr=False)  # may hold a password; None: the embedded store
    timeout: float

    def connect(self):
        return storage.connect(self.url, self.timeout) if self.url else storage.embedded()


@dataclass(frozen=True)
class Keys:
    """Bearer keys by name: the clients' and the admins' (never one key in both)."""

    clients: Mapping[str, str] = field(repr=False)
    admins: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class Settings:
    sandbox: bool
    gateway: GatewaySettings
    redis: RedisSettings
    keys: Keys
    secret: bytes = field(repr=False)  # HMACs: phone hashes, idempotency, URLs, sessions
    public_url: str | None
    policy: Policy
    limits: Limits
    phones: PhonePolicy
    trusted_proxies: int
    log_level: str
    # webhooks may reach private, loopback and link-local addresses (development, sandbox)
    webhook_allow_private: bool = False


class Var(NamedTuple):
    """A Policy or Limits field read from one variable and held to its field's rule."""

    variable: str
    parse: Callable[[Env, str], Any] = Env.get


# Every variable, as "part.field" (or a part of its own) and how it is read: the table of
# the contract, in the README's order (which is also the order problems are reported in).
READERS: dict[str, Callable[[Env], Any] | Var] = {
    "gateway.userkey": userkey,
    "gateway.password": password,
    "policy.originator": originator,
    "gateway.url": gateway_url,
    "gateway.affiliate_id": affiliate_id,
    "gateway.timeout": gateway_timeout,
    "redis.url": redis_url,
    "redis.timeout": lambda env: env.number("REDIS_TIMEOUT", 1.0, 0.0, 30.0),
    "keys.clients": keys("OTP_API_KEYS", f"sandbox:{SANDBOX_CLIENT_KEY}"),
    "keys.admins": keys("OTP_ADMIN_KEYS", f"sandbox-admin:{SANDBOX_ADMIN_KEY}"),
    "secret": secret,
    "public_url": public_url,
    "policy.code_mask": Var("OTP_CODE_MASK"),
    "policy.validity_minutes": Var("OTP_VALIDITY_MINUTES", Env.whole),
    "policy.max_attempts": Var("OTP_MAX_ATTEMPTS", Env.whole),
    "policy.resend_cooldown": Var("OTP_RESEND_COOLDOWN", Env.whole),
    "policy.max_sends": Var("OTP_MAX_SENDS", Env.whole),
    "policy.test_numbers": lambda env: parse_test_numbers(env.get("OTP_TEST_NUMBERS")),
    "phones.allowed_countries": countries,
    "phones.default_region": region,
    "phones.allow_voip": lambda env: env.boolean("OTP_ALLOW_VOIP", False),
    "policy.message_template": Var("OTP_MESSAGE_TEMPLATE"),
    "limits.start_per_phone": Var("OTP_LIMIT_START_PER_PHONE"),
    "limits.start_per_end_user_ip": Var("OTP_LIMIT_START_PER_IP"),
    "limits.check_per_end_user_ip": Var("OTP_LIMIT_CHECK_PER_IP"),
    "limits.check_per_phone": Var("OTP_LIMIT_CHECK_PER_PHONE"),
    "limits.per_client": Var("OTP_LIMIT_PER_CLIENT"),
    "policy.max_failures_per_phone": Var("OTP_MAX_FAILURES_PER_PHONE", Env.whole),
    "limits.budget_per_prefix": Var("OTP_BUDGET_PER_PREFIX"),
    "limits.budget_per_country": Var("OTP_BUDGET_PER_COUNTRY"),
    "limits.budget_global": Var("OTP_BUDGET_GLOBAL"),
    "trusted_proxies": lambda env: env.integer("OTP_TRUSTED_PROXIES", 0, 0, 10),
    "policy.sms_enabled": Var("OTP_SMS_ENABLED", Env.flag),
    "webhook_allow_private": lambda env: env.boolean("OTP_WEBHOOK_ALLOW_PRIVATE", env.sandbox),
    "log_level": log_level,
}
PARTS: dict[str, type] = {"gateway": GatewaySettings, "redis": RedisSettings, "keys": Keys,
                          "policy": Policy, "limits": Limits, "phones": PhonePolicy}


def _reader(key: str, spec: Callable[[Env], Any] | Var) -> Callable[[Env], Any]:
    if not isinstance(spec, Var):
        return spec
    part, _, name = key.partition(".")
    if part == "limits":
        return limit(name, spec.variable)
    return checked(PARTS[part], name, spec.variable, spec.parse)


_READ = {key: _reader(key, spec) for key, spec in READERS.items()}


def sandbox(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the configuration, valid or not yet checked, is sandbox mode: no userkey
    (a userkey file that is unreadable is no sandbox)."""
    return not Env(os.environ if environ is None else environ).given("ASPSMS_USERKEY")


def _environment(environ: Mapping[str, str] | None) -> Env:
    return Env(os.environ if environ is None else environ, sandbox=sandbox(environ))


def load_parts(parts: Iterable[str], environ: Mapping[str, str] | None = None, *,
               sandbox_allowed: bool = True) -> dict[str, Any]:
    """The given parts of Settings (and ``sandbox``), built; every problem among them at once.

    ``environ`` replaces os.environ (it is not merged with it).
    """
    env, collect, parts = _environment(environ), Collector(), set(parts)
    if env.sandbox and not sandbox_allowed:
        collect.errors.append(ConfigError("ASPSMS_USERKEY", "is required: this command "
                                                           "talks to the real gateway"))
        env.sandbox = False  # report what else the gateway would need, too
    values = {key: collect(lambda read=read: read(env))
              for key, read in _READ.items() if key.partition(".")[0] in parts}
    clients, admins = values.get("keys.clients"), values.get("keys.admins")
    if clients and admins and set(clients.values()) & set(admins.values()):
        collect.errors.append(ConfigError("OTP_ADMIN_KEYS",
                                          "an admin key must not also be a client key"))
    collect.done()
    grouped: dict[str, Any] = {"sandbox": env.sandbox}
    for key, value in values.items():
        part, _, name = key.partition(".")
        if name:
            grouped.setdefault(part, {})[name] = value
        else:
            grouped[part] = value
    return {part: PARTS[part](**value) if part in PARTS else value
            for part, value in grouped.items()}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the whole configuration; raise ConfigError listing every problem."""
    settings = Settings(**load_parts({key.partition(".")[0] for key in READERS}, environ))
    _warn_if_template_costs_more(settings.policy)
    return settings


def _warn_if_template_costs_more(policy: Policy) -> None:
    """A template is the operator's choice, but one that costs more than one SMS is said."""
    if policy.message_template is None:
        return
    encoding, parts = messages.longest_cost(None, policy.validity_minutes,
                                            policy.message_template)
    if (encoding, parts) != ("GSM-7", 1):
        log.warning("OTP_MESSAGE_TEMPLATE: each SMS goes as %s in %d part(s), each billed as "
                    "one SMS (at the longest code and OTP_VALIDITY_MINUTES); one GSM-7 part "
                    "holds 160 characters of the GSM 7-bit alphabet", encoding, parts)
