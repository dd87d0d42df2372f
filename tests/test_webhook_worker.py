"""The webhook worker as a process (issue 18): killed with SIGKILL while it holds events,
it loses none, another worker delivers them; the CLI's ``worker``; the sandbox's
in-process worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from service.cli import main
from tests.conftest import service_env
from tests.helpers import clean_environ, free_port, start, wait_for
from tests.test_webhooks import new_secret, point_webhook
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.slow


def worker_process(env: dict[str, str], metrics_port: int = 0) -> subprocess.Popen:
    """``aspsms-verify worker``, retrying fast and taking over a dead worker's events
    after 1 s; returned once it has started."""
    process = subprocess.Popen([sys.executable, "-m", "service.cli", "worker",
                                "--metrics-port", str(metrics_port), "--backoff-base", "0.2",
                                "--claim-idle", "1"],
                               env=clean_environ(**env), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, cwd=os.getcwd())
    for line in process.stdout:
        if b"webhook worker" in line and b"started" in line:
            return process
    raise AssertionError("the worker did not start")


def test_a_worker_killed_while_holding_events_loses_none(make_app, redis_server, simulator,
                                                        auth, admin_auth):
    env = service_env(redis_server.url, simulator.url, OTP_WEBHOOK_ALLOW_PRIVATE="true")
    app = make_app(OTP_WEBHOOK_ALLOW_PRIVATE="true")
    with Receiver(delay=30) as receiver:  # answers nothing while the first worker lives
        point_webhook(app, receiver.url)
        http = app.test_client()
        secret = new_secret(http, admin_auth)
        ids = [start(http, auth, f"+4179124000{n}").get_json()["id"] for n in range(6)]
        first = worker_process(env)
        try:  # it has read all six and posts the first: killed before any answer comes
            wait_for(lambda: receiver.deliveries, timeout=10)
            assert len(first_holds := receiver.deliveries) == 1, first_holds
            pending = app.extensions["otp"].redis.xpending("otp:{events}:ev", "webhooks")
            assert pending["pending"] == 6 and len(pending["consumers"]) == 1
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(5)
        receiver.deliveries.clear()
        receiver.delay = 0

        port = free_port()
        second = worker_process(env, port)
        try:
            wait_for(lambda: len({d.id for d in receiver.accepted()}) == 6, timeout=20)
            metrics = wait_for(lambda: _delivered(port), timeout=10)
        finally:
            second.terminate()
            second.wait(10)

    delivered = {d.verified(secret)["data"]["verification"]["id"] for d in receiver.accepted()}
    assert delivered == set(ids)
    assert metrics >= 6  # all that the first worker held, delivered by the second


def _delivered(port: int) -> float | None:
    """The worker's otp_webhook_deliveries_total{outcome="delivered"}, once it has one."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    return next((sample.value for family in text_string_to_metric_families(text)
                 for sample in family.samples
                 if sample.name == "otp_webhook_deliveries_total"
                 and sample.labels == {"outcome": "delivered"} and sample.value >= 6), None)


def test_the_worker_command_needs_a_shared_redis(monkeypatch, capsys):
    for name in list(os.environ):
        if name.startswith(("ASPSMS_", "OTP_", "REDIS_")):
            monkeypatch.delenv(name)

    assert main(["worker", "--metrics-port", "0"]) == 2
    assert "REDIS_URL" in capsys.readouterr().err


def test_sandbox_serve_runs_the_worker_in_process(monkeypatch):
    from service import create_app
    from service.webhooks.running import start_in_process

    sandbox = create_app({})
    try:
        stop = start_in_process(sandbox)
        assert stop is not None
        stop.set()
        assert start_in_process(create_app(service_env("redis://127.0.0.1:1/0",
                                                       "http://127.0.0.1:1"))) is None
        from flask import Flask

        assert start_in_process(Flask("another")) is None  # gunicorn_conf serves others too
    finally:
        sandbox.extensions["otp"].simulator.stop()


def test_on_a_redis_cluster_each_slot_has_its_stream_and_the_worker_finds_them(
        simulator, auth, admin_auth):
    from service import create_app
    from tests.conftest import last_code
    from tests.helpers import check
    from tests.test_webhooks import FAST, running_worker
    from tests.topologies import Cluster

    with Cluster() as cluster, Receiver() as receiver:
        app = create_app(service_env(cluster.url, simulator.url,
                                     OTP_WEBHOOK_ALLOW_PRIVATE="true"))
        point_webhook(app, receiver.url)
        http = app.test_client()
        secret = new_secret(http, admin_auth)
        phones = [f"+4179125000{n}" for n in range(6)]
        ids = [start(http, auth, phone).get_json()["id"] for phone in phones]
        assert check(http, auth, last_code(simulator, phones[0]), id=ids[0]) \
            .get_json()["valid"] is True
        with running_worker(app, FAST) as worker:
            wait_for(lambda: len(receiver.accepted()) == 7, timeout=20)
            streams = worker.queue.streams()

    assert {f"otp:{{{vid[3:7]}}}:ev" for vid in ids} <= set(streams)
    nodes = {app.extensions["otp"].redis.keyslot(s) // 5462 for s in streams}
    assert len(nodes) > 1  # the streams live on several primaries
    types = receiver.types(secret)
    assert types.count("verification.started") == 6 and "verification.approved" in types


def test_sandbox_serve_delivers_webhooks_without_a_worker_process():
    import requests

    from service.config_readers import SANDBOX_ADMIN_KEY, SANDBOX_CLIENT_KEY
    from tests.helpers import answers_healthz

    port = free_port()
    serve = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
                             env=clean_environ(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {SANDBOX_ADMIN_KEY}"}
    try:
        wait_for(lambda: answers_healthz(base, serve), timeout=30)
        with Receiver() as receiver:  # on loopback: the sandbox allows it
            assert requests.patch(base + "/admin/services/default", headers=admin, timeout=5,
                                  json={"webhook_url": receiver.url}).status_code == 200
            secret = requests.post(base + "/admin/services/default/webhook-secret",
                                   headers=admin, timeout=5).json()["secret"]
            assert start(base, {"Authorization": f"Bearer {SANDBOX_CLIENT_KEY}"},
                         "+41791234567").status_code == 201
            wait_for(lambda: receiver.accepted(), timeout=10)
    finally:
        serve.terminate()
        serve.wait(15)

    assert receiver.types(secret) == ["verification.started"]


def test_on_a_redis_cluster_a_slow_service_over_many_streams_holds_up_no_other(
        simulator, auth, admin_auth):
    # final review: the pass waited for each stream's batch in turn, so a slow service with
    # events in many slots (streams) held every other service for each of those streams
    import dataclasses
    import time

    from service import create_app
    from tests.test_services import bearer, create, new_key
    from tests.test_webhooks import FAST, arrived, running_worker
    from tests.topologies import Cluster

    with Cluster() as cluster, Receiver(delay=1.5) as slow, Receiver() as fast:
        app = create_app(service_env(cluster.url, simulator.url,
                                     OTP_WEBHOOK_ALLOW_PRIVATE="true"))
        http = app.test_client()
        slow_service = create(http, name="slow", webhook_url=slow.url)["id"]
        key = new_key(http, slow_service)["key"]
        point_webhook(app, fast.url)
        secret = new_secret(http, admin_auth)
        for n in range(8):
            start(http, bearer(key), f"+417912306{n:02}")
        # new slots' streams found within 0.2 s (else within streams_every, 5 s)
        with running_worker(app, dataclasses.replace(FAST, streams_every=0.2)) as worker:
            wait_for(lambda: slow.deliveries, timeout=10)
            assert len(worker.queue.streams()) > 1
            waits = []
            for n in range(3):
                begun = time.monotonic()
                start(http, auth, f"+4179123070{n}")
                arrived(fast, secret, "verification.started", n + 1)
                waits.append(time.monotonic() - begun)
            slow.delay = 0
            wait_for(lambda: len(slow.accepted()) == 8, timeout=15)
    assert max(waits) < 1.0, waits
