"""`python3 -m bench.profile`: the CPU one complete flow costs inside the app, without
gunicorn, the network stack or other processes' noise.

Starts a private redis-server and the simulator (each in its own process), builds the
service and the baseline in this process, and runs the same flows through each WSGI app
directly (werkzeug's test client), one thread, no gateway latency. Reports the app's CPU
milliseconds per flow (``time.thread_time`` around the two app calls only; reading the code
from the simulator is not counted) and their ratio, and with ``--cprofile`` the functions
where the service spends it. A shared machine's load changes wall time far more than
thread CPU time, so these figures move little from run to run; `make bench` measures the
served throughput.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench import driver
from bench.processes import CLIENT_KEY, END_USER, Simulator, service_env, start_redis

AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


_PROFILER: cProfile.Profile | None = None


def _app_call(call):
    """Run one request through the app, under the profiler when one is on."""
    if _PROFILER is None:
        return call()
    _PROFILER.enable()
    try:
        return call()
    finally:
        _PROFILER.disable()


def _code(sim_url: str, session: requests.Session, phone: str) -> str:
    messages = session.get(f"{sim_url}/_sim/messages", params={"recipient": phone}).json()
    return messages[-1]["code"]


def _service_flow(client, sim_url, session) -> float:
    phone = driver.next_phone()
    spent = time.thread_time()
    started = _app_call(lambda: client.post("/otp/start", json={"phone": phone, **END_USER},
                                            headers=AUTH))
    spent = time.thread_time() - spent
    assert started.status_code == 201, started.get_json()
    code = _code(sim_url, session, phone)
    before = time.thread_time()
    body = {"id": started.get_json()["id"], "code": code, **END_USER}
    checked = _app_call(lambda: client.post("/otp/check", json=body, headers=AUTH))
    spent += time.thread_time() - before
    assert checked.status_code == 200 and checked.get_json()["valid"], checked.get_json()
    return spent


def _baseline_flow(client, sim_url, session) -> float:
    phone = driver.next_phone()
    spent = time.thread_time()
    started = _app_call(lambda: client.post("/start", json={"phone": phone}))
    spent = time.thread_time() - spent
    assert started.status_code == 201, started.get_json()
    code = _code(sim_url, session, phone)
    before = time.thread_time()
    checked = _app_call(lambda: client.post("/check", json={"phone": phone, "code": code}))
    spent += time.thread_time() - before
    assert checked.status_code == 200 and checked.get_json()["valid"], checked.get_json()
    return spent


def _measure(flow, client, sim_url, flows: int, rounds: int) -> list[float]:
    """CPU ms per flow of each round (a round is ``flows`` flows)."""
    session = requests.Session()
    session.trust_env = False
    for _ in range(min(50, flows)):  # warm-up: pools, script cache, lazy imports
        flow(client, sim_url, session)
    return [sum(flow(client, sim_url, session) for _ in range(flows)) * 1000 / flows
            for _ in range(rounds)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.profile", description=__doc__)
    parser.add_argument("--flows", type=int, default=300, help="flows per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the median is reported")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N",
                        help="then profile N service flows and print the top functions")
    parser.add_argument("--sort", default="tottime", help="pstats sort key")
    parser.add_argument("--lines", type=int, default=45, help="functions --cprofile prints")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="aspsms-profile-") as logdir:
        redis_server = start_redis()
        simulator = Simulator(Path(logdir))
        try:
            simulator.reset()
            os.environ.update(service_env(redis_server.url, simulator.url))
            os.environ.setdefault("LOG_LEVEL", "INFO")
            from bench.baseline import create_app as baseline_app
            from service import create_app

            service = create_app().test_client()
            baseline = baseline_app().test_client()
            results = {}
            for _ in range(2):  # interleaved, twice
                for name, flow, client in (("service", _service_flow, service),
                                           ("baseline", _baseline_flow, baseline)):
                    results.setdefault(name, []).extend(
                        _measure(flow, client, simulator.url, args.flows, args.rounds))
            service_ms = statistics.median(results["service"])
            baseline_ms = statistics.median(results["baseline"])
            print(f"CPU ms per flow in the app (median of {2 * args.rounds} rounds of "
                  f"{args.flows} flows)")
            print(f"  service  {service_ms:6.2f}   (rounds {_spread(results['service'])})")
            print(f"  baseline {baseline_ms:6.2f}   (rounds {_spread(results['baseline'])})")
            print(f"  baseline / service = {baseline_ms / service_ms:.2f}")
            if args.cprofile:
                global _PROFILER
                session = requests.Session()
                session.trust_env = False
                profiler = _PROFILER = cProfile.Profile()
                for _ in range(args.cprofile):
                    _service_flow(service, simulator.url, session)
                _PROFILER = None
                stats = pstats.Stats(profiler, stream=sys.stdout)
                stats.sort_stats(args.sort).print_stats(args.lines)
        finally:
            simulator.stop()
            redis_server.stop()
    return 0


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}"


if __name__ == "__main__":
    sys.exit(main())
