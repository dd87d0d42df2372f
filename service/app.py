"""The application factory: configuration, services, blueprints, error handlers."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from service import admin, logs, metrics, sandbox, serving, storage
from service.config import ConfigError, Settings, load_settings
from service.events import Events
from service.gateway import AspsmsClient
from service.verification.budgets import LimitSettings, PhoneLimits
from service.verification.delivery import DeliveryNotifier
from service.verification.idempotency import IdempotencyStore
from service.verification.phones import PhonePolicy
from service.verification.service import Policy, VerificationService
from service.verification.store import VerificationStore

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Services:
    """Everything the views use, built once per process (``service.http.context.services``)."""

    settings: Settings
    redis: Any
    store: VerificationStore
    idempotency: IdempotencyStore
    gateway: AspsmsClient
    verifications: VerificationService
    admin: admin.Admin
    events: Events = field(default_factory=Events)
    simulator: Any = None
    startup_notes: list[str] = field(default_factory=list)


def _settings(config: Settings | Mapping[str, str] | None) -> Settings:
    if isinstance(config, Settings):
        return config
    environ = dict(os.environ)
    environ.update(config or {})
    try:
        return load_settings(environ)
    except ConfigError as e:
        failure = serving.config_failure(e)
        if failure is e:
            raise
        raise failure from None


def _gateway(settings: Settings) -> tuple[AspsmsClient, Any]:
    simulator = None
    url, userkey, password = settings.aspsms_url, settings.aspsms_userkey, settings.aspsms_password
    if settings.sandbox:
        simulator, userkey, password = sandbox.start_simulator()
        url = simulator.url
    client = AspsmsClient(url, userkey, password, timeout=settings.aspsms_timeout,
                          affiliate_id=settings.aspsms_affiliate_id,
                          on_call=metrics.observe_gateway_call)
    return client, simulator


def _phone_limits(settings: Settings, redis, events: Events) -> PhoneLimits:
    return PhoneLimits(
        store_client=redis, secret=settings.secret, on_event=events,
        settings=LimitSettings(settings.limit_start_per_phone, settings.limit_check_per_phone,
                               settings.budget_per_prefix, settings.budget_per_country,
                               settings.budget_global))


def build_services(settings: Settings) -> Services:
    redis = (storage.connect(settings.redis_url, settings.redis_timeout)
             if settings.redis_url else storage.embedded())
    store = VerificationStore(redis, settings.secret)
    events = Events()
    gateway, simulator = _gateway(settings)
    policy = Policy(
        code_mask=settings.code_mask, validity_minutes=settings.validity_minutes,
        max_attempts=settings.max_attempts, resend_cooldown=settings.resend_cooldown,
        max_sends=settings.max_sends, max_failures_per_phone=settings.max_failures_per_phone,
        originator=settings.aspsms_originator, sms_enabled=settings.sms_enabled,
        message_template=settings.message_template, test_numbers=dict(settings.test_numbers))
    phones = PhonePolicy(settings.default_region, settings.allowed_countries,
                         settings.allow_voip)
    verifications = VerificationService(store=store, gateway=gateway, policy=policy,
                                        phones=phones,
                                        claim_hold_seconds=settings.aspsms_timeout * 3 + 5,
                                        on_event=events,
                                        notifier=DeliveryNotifier(store, settings.secret,
                                                                  settings.public_url,
                                                                  events=events),
                                        limits=_phone_limits(settings, redis, events))
    return Services(settings=settings, redis=redis, store=store,
                    idempotency=IdempotencyStore(redis, settings.secret), gateway=gateway,
                    verifications=verifications, events=events, simulator=simulator,
                    admin=admin.build(redis, settings.secret, verifications, events,
                                      settings.aspsms_originator))


def build_app(config: Settings | Mapping[str, str] | None = None) -> Flask:
    settings = _settings(config)
    serving.refuse_split_sandbox(settings)
    app = Flask("service")
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES)
    app.json.sort_keys = False

    logs.init_app(app, settings)

    # services
    from service.http import context

    services = build_services(settings)
    app.extensions[context.EXTENSION] = services
    services.admin.ops.start_originator_check(services.startup_notes)

    # extensions
    from service.http import limits, observe

    limits.init_app(app, settings)
    observe.init_app(app, services)

    # blueprints
    from service.http import admin, console, delivery, ops, otp

    app.register_blueprint(ops.bp)
    app.register_blueprint(otp.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(delivery.bp)
    console.init_app(app, settings)  # the web console at /admin/: session cookie, CSRF
    if settings.sandbox:
        from service.http import sandbox_views

        app.register_blueprint(sandbox_views.bp)
        sandbox.announce(settings)

    # errors
    from service.http import problems

    problems.init_app(app)
    # last: only once every blueprint is imported are all declared limits known
    limits.skip_request_level_pass(app)
    return app
