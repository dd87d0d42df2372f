# syntax=docker/dockerfile:1.7
# aspsms-verify: build the wheels in one stage, run them in a slim one without build tools.
#   docker build -t aspsms-verify .
#   docker run -p 8000:8000 aspsms-verify          # sandbox mode: no configuration needed

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/runtime.txt ./requirements/
COPY service ./service
# The project and every dependency as wheels, at the versions of the lock
# (requirements/runtime.txt, made by scripts/lock); all of them publish wheels for
# CPython 3.11 on amd64 and arm64, so no compiler is needed even here. The extra otel
# (OpenTelemetry, ~10 MB) is included so that traces are switched on by the standard
# OTEL_* variables alone, as an orchestrator injects them, without another image; it is
# never imported while those variables ask for no traces (service/tracing.py).
RUN pip wheel --wheel-dir /wheels -c requirements/runtime.txt '.[otel]'

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="aspsms-verify" \
      org.opencontainers.image.description="Two-factor phone verification on the ASPSMS gateway" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GUNICORN_BIND=0.0.0.0:8000 \
    GUNICORN_WORKER_TMP_DIR=/dev/shm \
    PROMETHEUS_MULTIPROC_DIR=/run/aspsms-verify/metrics
# A fixed numeric id, so that Kubernetes can check runAsNonRoot without a user database.
RUN groupadd --system --gid 10001 verify \
    && useradd --system --uid 10001 --gid verify --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin verify \
    && install -d -o 10001 -g 10001 -m 0700 /run/aspsms-verify/metrics
# The wheels are mounted for the install only, so they never become a layer of this image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl
COPY --chmod=0755 deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /srv
# gunicorn reads ./gunicorn.conf.py when given no -c, so even "docker run IMAGE gunicorn
# 'service:create_app()' -w 4" gets the packaged settings (the master's configuration
# check, one worker in sandbox mode).
COPY gunicorn.conf.py ./
USER 10001:10001
EXPOSE 8000
# Liveness only (no Redis, no gateway); readiness is the orchestrator's /readyz probe.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["docker-entrypoint.sh"]
CMD []
