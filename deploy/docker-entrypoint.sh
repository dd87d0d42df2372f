#!/bin/sh
# Container entry point. With no arguments, or only options ("--workers 4"), it becomes
# gunicorn: exec makes gunicorn PID 1, so the platform's SIGTERM reaches the master and the
# requests in flight finish (graceful_timeout). Anything else is run as a command instead,
# e.g. "aspsms-verify simulator --port 8081" or "aspsms-verify credits".
set -eu

case "${1:-}" in
  "" | -*)
    exec gunicorn -c python:service.gunicorn_conf "$@" "service:create_app()"
    ;;
  *)
    exec "$@"
    ;;
esac
