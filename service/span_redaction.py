"""What an exporter sees of a span: the span less what identifies a person or opens a door.

Imported only when traces are on (:mod:`service.tracing`), so it may import the SDK. The
instrumentations set some attributes after every hook has run (the Flask one re-sets the
request's after its request hook), so the last point where all of a span is known, and
every exporter can be reached, is its end: each exporter's processor is wrapped in
:class:`Redacting`, which hands it a cleaned copy.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.trace import Status

from service.logs import MaskingFilter

# URLs keep their path: the query may hold a number (the lookup's ?phone=) or a signature
URL_ATTRIBUTES = frozenset({"http.target", "http.url", "url.full", "url.original"})
DROPPED_ATTRIBUTES = frozenset({"url.query"})
# captured headers (OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*) that carry credentials
SECRET_HEADERS = ("authorization", "cookie", "api_key", "api-key", "token")


class Redacting(SpanProcessor):
    """Hands ``inner`` (an exporter's processor) each ended span redacted."""

    def __init__(self, inner: SpanProcessor, masking: MaskingFilter):
        self.inner = inner
        self.masking = masking

    def on_start(self, span, parent_context=None) -> None:
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.inner.on_end(redacted(span, self.masking))

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def redacted(span: ReadableSpan, masking: MaskingFilter) -> ReadableSpan:
    status = span.status
    if status.description:
        status = Status(status.status_code, masking.mask(status.description))
    return ReadableSpan(
        name=masking.mask(span.name), context=span.context, parent=span.parent,
        resource=span.resource, attributes=attributes(span.attributes, masking),
        events=[Event(event.name, attributes(event.attributes, masking), event.timestamp)
                for event in span.events],
        links=span.links, kind=span.kind, status=status, start_time=span.start_time,
        end_time=span.end_time, instrumentation_scope=span.instrumentation_scope)


def attributes(found, masking: MaskingFilter) -> dict[str, Any]:
    clean = {}
    for name, value in (found or {}).items():
        if name in DROPPED_ATTRIBUTES or (
                ".header." in name and any(word in name for word in SECRET_HEADERS)):
            continue
        if name in URL_ATTRIBUTES and isinstance(value, str):
            value = value.split("?", 1)[0]
        clean[name] = _value(value, masking)
    return clean


def _value(value, masking: MaskingFilter):
    if isinstance(value, str):
        return masking.mask(value)
    if isinstance(value, list | tuple):
        return tuple(_value(item, masking) for item in value)
    return value
