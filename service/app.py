"""The application factory: configuration, services, blueprints, error handlers."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Flask

from service import admin, logs, metrics, sandbox, serving, stats, tenants, tracing
from service.config import ConfigError, Settings, load_settings
from service.events import Events
from service.gateway import AspsmsClient
from service.verification.budgets import PhoneLimits
from service.verification.delivery import DeliveryNotifier
from service.verification.event_log import EventLog
from service.verification.idempotency import IdempotencyStore
from service.verification.service import VerificationService
from service.verification.store import VerificationStore
from service.verification.tenant import Tenant
from service.verification.twilio_sids import VerificationSids
from service.webhooks.failed import FailedDeliveries
from service.webhooks.queue import waiting_events
from service.webhooks.signing import Secrets

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
    tenants: tenants.Registry  # every service (issue 17), from a per-process cache
    service_admin: tenants.ServiceAdmin  # their audited changes (API, console)
    twilio_sids: VerificationSids  # issue 19: VE sids of the /v2 routes and their mapping
    stats: stats.Stats  # the dashboard's counters and their reader
    events: Events = field(default_factory=Events)
    simulator: Any = None
    startup_notes: list[str] = field(default_factory=list)
    webhooks: Webhooks | None = None

    @property
    def default_tenant(self) -> Tenant:
        """The service "default": the environment's configuration (with stored overrides)."""
        return self.tenants.default


@dataclass(frozen=True)
class Webhooks:
    """The webhooks' state (issue 18): the services' signing secrets, failed deliveries."""

    secrets: Secrets
    failed: FailedDeliveries


def _settings(config: Settings | Mapping[str, str] | None) -> Settings:
    """The configuration: ``config`` itself, or read from the mapping given (which replaces
    the environment, so a developer's shell never changes a test), or from os.environ."""
    if isinstance(config, Settings):
        return config
    try:
        return load_settings(config)
    except ConfigError as e:
        failure = serving.config_failure(e)
        if failure is e:
            raise
        raise failure from None


def _gateway(settings: Settings) -> tuple[AspsmsClient, Any]:
    simulator, gateway = None, settings.gateway
    if settings.sandbox:
        simulator, userkey, password = sandbox.start_simulator()
        gateway = replace(gateway, url=simulator.url, userkey=userkey, password=password)
    return gateway.client(on_call=metrics.observe_gateway_call), simulator


def build_services(settings: Settings) -> Services:
    redis = settings.redis.connect()
    # events are off until enable_events() says which services take webhooks
    event_log = EventLog.off(redis)
    store = VerificationStore(redis, settings.secret, event_log)
    events = Events()
    gateway, simulator = _gateway(settings)
    notifier = DeliveryNotifier(store, settings.secret, settings.public_url, events=events)
    limits = PhoneLimits(store_client=redis, secret=settings.secret, on_event=events,
                         events=event_log)
    verifications = VerificationService(store=store, gateway=gateway,
                                        claim_hold_seconds=settings.gateway.timeout * 3 + 5,
                                        on_event=events, notifier=notifier, limits=limits)
    # the deployment's own admin actions (the environment's originator, unlock codes and
    # support reads of the default service) act as the environment's service
    admin_side = admin.build(redis, settings.secret, verifications, events,
                             tenants.base_tenant(settings))
    registry, service_admin = tenants.build(redis, settings, admin_side.audit)
    admin_side.ops.tenant_of = registry.get
    admin_side.ops.service_ids = lambda: [tenant.id for tenant in registry.all()]
    return Services(settings=settings, redis=redis, store=store,
                    idempotency=IdempotencyStore(redis, settings.secret), gateway=gateway,
                    verifications=verifications, events=events, simulator=simulator,
                    tenants=registry, service_admin=service_admin, admin=admin_side,
                    twilio_sids=VerificationSids(redis, settings.secret),
                    stats=stats.build(redis, events, service_ids=lambda: [
                        tenant.id for tenant in registry.all()],
                        webhook_backlog=lambda: waiting_events(store)),
                    webhooks=Webhooks(Secrets(redis, settings.secret),
                                      FailedDeliveries(redis, event_log)))


def enable_events(services: Services, current: Callable[[], Services]) -> None:
    """Events on while any service of ``current()`` (the app's services as they are now:
    a test may replace them) has a webhook URL; asked in memory at each decision."""
    from service.webhooks.targets import any_target

    services.store.events.enabled = lambda: any_target(current())


def build_app(config: Settings | Mapping[str, str] | None = None, *,
              span_exporters: list | None = None) -> Flask:
    """``span_exporters``: where traces go instead of the OTEL_* variables' exporters (when
    those ask for traces at all)."""
    settings = _settings(config)
    serving.refuse_split_sandbox(settings)
    app = Flask("service")
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES)
    app.json.sort_keys = False

    logs.init_app(app, settings)
    # before the services: their scripts are traced from the first call
    try:
        tracing.init_app(app, config if isinstance(config, Mapping) else os.environ,
                         logs.secret_values(settings), span_exporters=span_exporters)
    except ConfigError as e:
        raise serving.config_failure(e) from None

    # services
    from service.http import context

    services = build_services(settings)
    app.extensions[context.EXTENSION] = services
    enable_events(services, lambda: app.extensions[context.EXTENSION])
    services.admin.ops.start_originator_check(services.startup_notes)

    # extensions
    from service.http import limits, observe

    limits.init_app(app, settings)
    observe.init_app(app, services)

    # blueprints
    from service.http import admin, console, delivery, ops, otp, twilio, webhooks
    from service.http import stats as admin_stats

    app.register_blueprint(ops.bp)
    app.register_blueprint(otp.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(admin_stats.bp)
    app.register_blueprint(delivery.bp)
    app.register_blueprint(webhooks.bp)
    console.init_app(app, settings)  # the web console at /admin/: session cookie, CSRF
    twilio.init_app(app)  # issue 19: /v2, Twilio Verify's face over the same domain
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
