"""Events delivered per second by one webhook worker (issue 18).

Starts a private redis-server and the simulator, makes ``--events`` verifications through
the app (test client) with the default service's webhook pointed at a receiver in its own
process (answers 200 at once), then times one worker draining the streams: every event
signed with ``standardwebhooks``, posted over a new connection to the checked address, and
acknowledged. One worker delivers one service's events one at a time (up to 8 services at
once); run more workers for more.

    python3 -m bench.webhooks [--events 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.processes import CLIENT_KEY, Simulator, service_env, start_redis
from tests.helpers import free_port

ADMIN_KEY = "bench-admin-key-0123456789"  # bench.processes.service_env's


def _receive(port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.webhooks", description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8,
                        help="services delivered to at once (the bench has one)")
    args = parser.parse_args(argv)

    from service import create_app
    from service.webhooks.running import build_worker
    from service.webhooks.worker import Timing

    redis_server = start_redis()
    simulator = Simulator(Path(tempfile.mkdtemp(prefix="bench-webhooks-")))
    port = free_port()
    receiver = multiprocessing.Process(target=_receive, args=(port,), daemon=True)
    receiver.start()
    try:
        app = create_app({**service_env(redis_server.url, simulator.url),
                          "OTP_WEBHOOK_ALLOW_PRIVATE": "true", "LOG_LEVEL": "WARNING"})
        services = app.extensions["otp"]
        http = app.test_client()
        admin = {"Authorization": "Bearer " + ADMIN_KEY}
        patched = http.patch("/admin/services/default", headers=admin,
                             json={"webhook_url": f"http://127.0.0.1:{port}/hook"})
        assert patched.status_code == 200, patched.get_json()
        services.webhooks.secrets.rotate("default")
        auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
        for n in range(args.events):
            http.post("/otp/start", json={"phone": f"+4179{n:07d}"}, headers=auth)
        worker = build_worker(app.extensions["otp"], lambda: app.extensions["otp"],
                              Timing(sweep_every=3600, concurrency=args.concurrency))
        begun, delivered = time.perf_counter(), 0
        while delivered < args.events:
            handled = worker.run_once()
            delivered += handled
            if not handled:
                time.sleep(0.01)
        seconds = time.perf_counter() - begun
        print(json.dumps({"events": delivered, "seconds": round(seconds, 2),
                          "events_per_second": round(delivered / seconds, 1)}))
    finally:
        receiver.terminate()
        simulator.stop()
        redis_server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
