"""gunicorn settings from the environment (``gunicorn -c python:service.gunicorn_conf``).

The gateway call is I/O-bound, so threaded workers (gthread): a slow gateway ties up a
thread, not a process. Timeouts sit above the gateway's and Redis's so a request is never
killed while it still waits for them.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
_gateway_timeout = float(os.environ.get("ASPSMS_TIMEOUT", "10"))
# a send may wait for one timeout plus two connect retries; keep well above that
timeout = int(os.environ.get("GUNICORN_TIMEOUT", str(int(_gateway_timeout * 3 + 15))))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", str(int(_gateway_timeout + 10))))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
