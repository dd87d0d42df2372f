"""The worker as a process (``aspsms-verify worker``) and in the sandbox's ``serve``.

A worker builds the same services as the app (so it reads the same configuration and the
same service registry) and delivers until SIGTERM or SIGINT, finishing the event in hand.
Its metrics are served on ``--metrics-port`` (Prometheus text format, ``/metrics``).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from service.webhooks.targets import target
from service.webhooks.worker import Timing, Worker, start_in_thread

log = logging.getLogger(__name__)


def build_worker(services: Any, current: Callable[[], Any] | None = None,
                 timing: Timing | None = None) -> Worker:
    """A worker over ``services`` (``current``: how to find them as they are now)."""
    from service.app import enable_events

    current = current or (lambda: services)
    enable_events(services, current)  # the sweep's expiries write their events
    return Worker(store=services.store, targets=lambda service_id: target(current(), service_id),
                  secrets=services.webhooks.secrets, failed=services.webhooks.failed,
                  allow_private=services.settings.webhook_allow_private,
                  timing=timing or Timing())


def start_in_process(app) -> threading.Event | None:
    """The sandbox's worker, in the serving process (gunicorn's post_worker_init)."""
    from service.http.context import EXTENSION

    services = getattr(app, "extensions", {}).get(EXTENSION)
    if services is None or not services.settings.sandbox:  # another app, or not the sandbox
        return None
    log.info("sandbox mode: the webhook worker runs in this process")
    return start_in_thread(build_worker(services, lambda: app.extensions[EXTENSION],
                                        Timing(idle_pause=0.5)))


def run(timing: Timing, metrics_port: int) -> int:
    """``aspsms-verify worker``: deliver until SIGTERM/SIGINT."""
    from service import logs
    from service.app import build_services
    from service.config import ConfigError, load_settings

    settings = load_settings()
    if settings.redis.url is None:
        raise ConfigError("REDIS_URL", "is required by the worker: the embedded store lives "
                                       "in one process (the sandbox's serve runs its own)")
    logs.install(settings.log_level, logs.secret_values(settings))  # JSON, masked
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    worker = build_worker(build_services(settings), timing=timing)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    worker.run(stop)
    return 0
