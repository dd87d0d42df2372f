"""A webhook worker in a process of its own, for tests that kill it: the service from the
environment, its default service posting to ``argv[1]`` (until the services registry sets
webhook URLs by PATCH, the environment cannot)."""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading

from service.app import build_services
from service.config import load_settings
from service.webhooks.running import build_worker
from service.webhooks.worker import Timing


def main() -> None:
    services = build_services(load_settings())
    tenant = dataclasses.replace(services.default_tenant, webhook_url=sys.argv[1])
    services = dataclasses.replace(services, default_tenant=tenant)
    worker = build_worker(services, timing=Timing(backoff_base=0.2, claim_idle=1.0,
                                                  idle_pause=0.02))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    worker.run(stop)


if __name__ == "__main__":
    main()
