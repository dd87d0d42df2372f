"""`python3 -m bench.run`: start Redis, the simulator, the service and the baseline; measure
the simulator alone, trace a flow's Redis round trips, then drive complete flows at each
gateway latency × concurrency, interleaving service and baseline; print the table and
write bench/results/<timestamp>.json."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import redis
import requests

from bench import driver, redis_stats, report
from bench.processes import (
    ROOT,
    Child,
    Gunicorn,
    Simulator,
    cpu_seconds,
    machine_busy_seconds,
    service_env,
    start_redis,
)
from bench.verdict import verdicts

KEY_FIELDS = ("target", "latency_ms", "concurrency")
ADMIN_KEY = "bench-admin-key-0123456789"  # bench.processes.service_env's


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m bench.run", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per point")
    parser.add_argument("--repeat", type=int, default=1, help="runs whose median is reported")
    parser.add_argument("--concurrency", default="8,32,128", help="comma-separated")
    parser.add_argument("--latency-ms", default="0,150", help="gateway latencies, comma-separated")
    parser.add_argument("--quick", action="store_true", help="2-s smoke run (sets --duration 2)")
    parser.add_argument("--trace-flows", type=int, default=20, help="flows traced with MONITOR")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--twilio", action="store_true",
                        help="also measure the same flows through /v2 (Twilio Verify's routes)")
    parser.add_argument("--webhooks", action="store_true",
                        help="the service's default service posts every event to a local "
                             "receiver, delivered by an `aspsms-verify worker` (issue 18)")
    parser.add_argument("--lean-baseline", action="store_true",
                        help="the baseline's requests Session without trust_env, like the "
                             "service's (default: requests' defaults)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 2.0
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.latency_ms = [float(ms) for ms in args.latency_ms.split(",")]
    return args


class Stack:
    """Everything under test, started once; the apps share Redis and the simulator."""

    def __init__(self, resources: ExitStack, logdir: Path, lean_baseline: bool = False,
                 webhooks: bool = False):
        self.redis_server = start_redis()
        resources.callback(self.redis_server.stop)
        self.redis = redis.Redis.from_url(self.redis_server.url)
        self.sim = Simulator(logdir)
        resources.callback(self.sim.stop)
        env = service_env(self.redis_server.url, self.sim.url)
        self.secret = env["OTP_SECRET"].encode()
        self.apps = {}
        lean = {"BENCH_BASELINE_TRUST_ENV": "0"} if lean_baseline else {}
        for name, app in (("service", "service:create_app()"),
                          ("baseline", "bench.baseline:create_app()")):
            self.apps[name] = Gunicorn(name, app, {**env, **(lean if name == "baseline" else {})},
                                       logdir)
            resources.callback(self.apps[name].stop)
        self.connections: Counter = Counter()  # gateway connections per app, whole run
        self.webhook_url = webhooks and _start_webhooks(resources, env, logdir)

    def _hook(self) -> None:
        """The default service's webhook, again after a flush (the registry is in Redis);
        every gunicorn worker's registry sees it within a second."""
        base, admin = self.apps["service"].url, {"Authorization": "Bearer " + ADMIN_KEY}
        requests.patch(base + "/admin/services/default", json={"webhook_url": self.webhook_url},
                       headers=admin, timeout=10).raise_for_status()
        requests.post(base + "/admin/services/default/webhook-secret", headers=admin,
                      timeout=10).raise_for_status()
        time.sleep(1.2)

    def target(self, name: str) -> driver.Target:
        if name == "simulator":
            return driver.simulator_alone(self.sim.url)
        if name == "twilio":  # the service's /v2 routes
            return driver.twilio(self.apps["service"].url, self.secret)
        return getattr(driver, name)(self.apps[name].url)

    def snapshot(self, app: Gunicorn | None) -> dict:
        return {
            "commands": redis_stats.commandstats(self.redis),
            "sim_connections": self.sim.connections_opened(),
            "workers": app.worker_cpu() if app else [],
            "workers_unchanged": app.workers_unchanged() if app else True,
            "redis_cpu": cpu_seconds([self.redis_server.process.pid]),
            "sim_cpu": cpu_seconds(self.sim.pids()),
            "machine_busy": machine_busy_seconds(),
        }

    def measure(self, name: str, latency_ms: float, concurrency: int, duration: float,
                repeat: int) -> dict:
        """One point on a clean slate: empty Redis, simulator reset, latency set."""
        app = self.apps.get("service" if name == "twilio" else name)
        self.redis.flushall()
        if self.webhook_url and name == "service":
            self._hook()
        self.sim.reset()  # also clears the fault and the connection counter
        self.sim.set_latency(latency_ms / 1000)
        before = self.snapshot(app)
        sample = driver.run_point(self.target(name), self.sim.url, concurrency, duration)
        after = self.snapshot(app)
        key = {"target": name, "latency_ms": latency_ms, "concurrency": concurrency,
               "repeat": repeat}
        row = report.point(key, sample, before, after)
        if app is not None:
            self.connections[name] += row["gateway_connections"]
        _progress(row)
        return row


def _start_webhooks(resources: ExitStack, env: dict[str, str], logdir: Path) -> str:
    """A receiver answering 200 in its own process, and one worker; the receiver's URL."""
    import multiprocessing

    from bench.webhooks import _receive
    from tests.helpers import free_port

    port = free_port()
    receiver = multiprocessing.Process(target=_receive, args=(port,), daemon=True)
    receiver.start()
    resources.callback(receiver.terminate)
    worker = Child("worker", [sys.executable, "-m", "service.cli", "worker", "--metrics-port",
                              "0"], {**os.environ, **env, "OTP_WEBHOOK_ALLOW_PRIVATE": "true"},
                   logdir)
    resources.callback(worker.stop)
    return f"http://127.0.0.1:{port}/hook"


def _progress(row: dict) -> None:
    print(f"  {row['target']:9} {row['latency_ms']:4.0f} ms  c={row['concurrency']:<4}"
          f"{row['flows_per_s']:7.1f} flows/s  check p99 {row['check_ms']['p99'] or 0:6.1f} ms"
          f"  errors {row['errors']}  driver cpu {row['driver_cpu_pct']:.0f}%", flush=True)


def _repeats(stack: Stack, args) -> list[dict]:
    rows = []
    for repeat in range(args.repeat):
        print(f"run {repeat + 1}/{args.repeat}", flush=True)
        for latency in args.latency_ms:
            for concurrency in args.concurrency:
                # interleaved: noise hits them alike
                for name in ("service", *(["twilio"] if args.twilio else []), "baseline"):
                    rows.append(stack.measure(name, latency, concurrency, args.duration,
                                              repeat))
    return rows


def _prepare(stack: Stack, args) -> tuple[list[dict], dict]:
    print("simulator alone (the gateway calls of a flow, no app in between)", flush=True)
    alone = [stack.measure("simulator", latency, c, args.duration, 0)
             for latency in args.latency_ms for c in args.concurrency]
    print("warm-up and Redis trace", flush=True)
    traces = {}
    for name in ("service", *(["twilio"] if args.twilio else []), "baseline"):
        stack.measure(name, 0, max(args.concurrency), min(2.0, args.duration), -1)
        stack.sim.reset()
        traces[name], own = redis_stats.trace(stack.redis_server.url, stack.target(name),
                                              stack.sim.url, args.trace_flows)
        stack.connections[name] += stack.sim.connections_opened() - own
    return alone, traces


def machine() -> dict:
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True,
                                   text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu": _cpu_model(), "load_average": os.getloadavg(),
            "python": platform.python_version(), "redis": redis_version,
            "workers": int(os.environ.get("WEB_CONCURRENCY", "2")),
            "threads": int(os.environ.get("GUNICORN_THREADS", "64"))}


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    document = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(),
                "settings": {k: str(v) if isinstance(v, Path) else v
                             for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="aspsms-bench-") as logdir, ExitStack() as res:
        stack = Stack(res, Path(logdir), args.lean_baseline, args.webhooks)
        alone, traces = _prepare(stack, args)
        rows = _repeats(stack, args)
        document["gateway_connections_total"] = dict(stack.connections)
    summary = report.medians(rows, KEY_FIELDS)
    report.add_ratios(summary)
    report.add_run_ratios(summary, rows)
    document.update(simulator_alone=report.medians(alone, KEY_FIELDS), summary=summary,
                    redis_trace=traces, points=rows)
    document["verdicts"] = verdicts(document)
    print(report.render(document))
    path = args.output / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    report.write_json(path, document)
    print(f"\nJSON: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
