#!/bin/sh
# Container entry point. With no arguments, or only options ("--workers 4"), it becomes
# gunicorn: exec makes gunicorn PID 1, so the platform's SIGTERM reaches the master and the
# requests in flight finish (graceful_timeout). Anything else is run as a command instead,
# e.g. "aspsms-verify simulator --port 8081" or "aspsms-verify credits".
# Every other variable is checked by gunicorn's master (service/gunicorn_conf.py) before it
# binds or forks; WEB_CONCURRENCY is checked here because gunicorn reads it on import, with
# a traceback for a bad value.
set -eu

case "${1:-}" in
  "" | -*)
    case "${WEB_CONCURRENCY:-2}" in
      *[!0-9]* | 0*)
        echo "configuration error: WEB_CONCURRENCY: must be a whole number of at least 1," \
             "got '${WEB_CONCURRENCY}'" >&2
        exit 2
        ;;
    esac
    exec gunicorn -c python:service.gunicorn_conf "$@" "service:create_app()"
    ;;
  *)
    exec "$@"
    ;;
esac
