"""OpenTelemetry traces, opt-in through the standard ``OTEL_*`` variables.

Off unless ``OTEL_TRACES_EXPORTER`` names an exporter or an OTLP endpoint is set
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``);
``OTEL_SDK_DISABLED=true`` wins. Then every request is one span (the maintained Flask
instrumentation), with a child span for each Redis script the store runs (``redis
reserve_send``: :func:`traced_script`, around the scripts this service registers) and for
each gateway call (the requests instrumentation). The packages are the optional extra
``otel`` (``pip install 'aspsms-verify[otel]'``); without them traces stay off, with a
warning.

Nothing that identifies a person or opens a door leaves the process: before any exporter
sees a span, :class:`service.span_redaction.Redacting` drops query strings (the lookup's
``?phone=``, a delivery callback's signature), cookie and authorization headers, and masks
what the log filter masks (phone numbers in any spelling, configured keys and secrets,
bearer tokens) in every attribute, event and name. The spans themselves carry no phone
number, code or key: the gateway's body (JSON, where the number and the code travel) is
never an attribute, and a script span names its script, never its keys or arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from service.envreader import ConfigError

log = logging.getLogger(__name__)

TRACER_NAME = "aspsms-verify"
ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Probes and scrapes arrive every few seconds; a span each would bury the requests.
UNTRACED_URLS = "/healthz,/readyz,/metrics"

_tracer = None  # this process's tracer once traces are on (scripts.py asks for it)


def wanted(env: Mapping[str, str]) -> bool:
    """Whether the standard variables ask for traces."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if names:
        return names != "none"
    return any(env.get(name, "").strip() for name in ENDPOINTS)


def exporters(env: Mapping[str, str]) -> list:
    """The span exporters OTEL_TRACES_EXPORTER names (``otlp`` when it names none), from
    their packages' entry points; ``otlp`` is OTLP over HTTP unless the protocol is grpc."""
    from importlib.metadata import entry_points

    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
    otlp = "otlp_proto_grpc" if protocol.strip().lower() == "grpc" else "otlp_proto_http"
    found = []
    for name in env.get("OTEL_TRACES_EXPORTER", "otlp").split(","):
        name = name.strip().lower()
        if name in ("", "none"):
            continue
        points = entry_points(group="opentelemetry_traces_exporter",
                              name=otlp if name == "otlp" else name)
        if not points:
            raise ConfigError("OTEL_TRACES_EXPORTER", f"no span exporter {name!r} is installed "
                              "(the extra 'otel' brings otlp and console)")
        found.append(next(iter(points)).load()())
    return found


def init_app(app, env: Mapping[str, str], secrets: Iterable[str] = (), *,
             span_exporters: list | None = None):
    """Trace the app's requests and the process's gateway calls when ``env`` asks for it
    (``span_exporters`` replaces the ones it names); the TracerProvider, or None."""
    global _tracer
    if not wanted(env):
        return None
    try:
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_* variables ask for traces, but the OpenTelemetry packages are not "
                    "installed (pip install 'aspsms-verify[otel]'): no traces")
        return None
    named = "OTEL_SERVICE_NAME" in env or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(resource=Resource.create(
        {} if named else {"service.name": TRACER_NAME}))
    from service.logs import MaskingFilter  # (imports Flask: so only here, never by scripts.py)
    from service.span_redaction import Redacting

    masking = MaskingFilter(secrets)
    for exporter in exporters(env) if span_exporters is None else span_exporters:
        provider.add_span_processor(Redacting(BatchSpanProcessor(exporter), masking))
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider,
                                       excluded_urls=UNTRACED_URLS)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    _tracer = provider.get_tracer(TRACER_NAME)
    app.extensions["otel"] = provider
    return provider


def shutdown(app) -> None:
    """Stop tracing (tests build apps of both kinds in one process)."""
    global _tracer
    provider = app.extensions.pop("otel", None)
    if provider is None:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    FlaskInstrumentor().uninstrument_app(app)
    RequestsInstrumentor().uninstrument()
    provider.shutdown()
    _tracer = None


def traced_script(script, name: str):
    """A registered Lua script whose every run is a span ``redis <name>`` while traces are
    on; the script itself otherwise (nothing added to the hot path)."""
    return script if _tracer is None else _TracedScript(script, name, _tracer)


class _TracedScript:
    def __init__(self, script, name: str, tracer):
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._script, self._tracer = script, tracer
        self._span_name = f"redis {name}"
        self._attributes = {"db.system": "redis", "db.operation.name": "EVALSHA",
                            "db.redis.script": name}
        self._kind, self._status, self._error = SpanKind.CLIENT, Status, StatusCode.ERROR

    def __getattr__(self, name):
        # the rest of the script as registered (its sha: a pipeline sends EVALSHA itself)
        return getattr(self._script, name)

    def __call__(self, keys=(), args=(), client=None):
        with self._tracer.start_as_current_span(
                self._span_name, kind=self._kind, attributes=self._attributes,
                record_exception=False, set_status_on_exception=False) as span:
            try:
                return self._script(keys=keys, args=args, client=client)
            except Exception as e:  # its type only: a message may quote a key or argument
                span.set_status(self._status(self._error, type(e).__name__))
                raise

