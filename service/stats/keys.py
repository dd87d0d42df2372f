"""Where the dashboard's counters live in Redis, and how long they stay.

Every key carries the one hash tag ``{otp-stats}``, so a flush (one pipeline) and a read
each go to one slot, one node, on a Redis Cluster:

    otp:{otp-stats}:m:<minute>   hash: counts of one minute (minutes since the epoch)
    otp:{otp-stats}:h:<hour>     hash: counts of one hour (hours since the epoch)
    otp:{otp-stats}:credits      sorted set: credit readings, scored by time (ms)
    otp:{otp-stats}:breakers     sorted set: breakers that tripped, scored by the trip (ms)

A bucket's fields are ``<metric>|<service>|<country>`` (``sent|default|CH``) and its values
counts. Services and countries come from small sets (tenant ids, ISO alpha-2 codes), so a
bucket holds at most a few hundred fields.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers

from service.verification.tenant import DEFAULT

TAG = "{otp-stats}"
MINUTE_TTL_SECONDS = 2 * 24 * 3600 + 3600  # ~2 days of minutes
HOUR_TTL_SECONDS = 8 * 24 * 3600 + 3600  # ~8 days of hours
HISTORY_MS = 8 * 24 * 3600 * 1000  # credit readings and breaker trips kept as long
CREDITS_KEY = f"otp:{TAG}:credits"
BREAKERS_KEY = f"otp:{TAG}:breakers"
MOST_READINGS = 2_000  # one a minute at most (recorder.CREDITS_EVERY_MS): ~1.4 days' worth
MOST_BREAKERS = 500

# What is counted, per service and country.
METRICS = ("sent", "send_failed", "approved", "rejected", "delivered", "undelivered",
           "buffered")
_SERVICE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def minute_key(minute: int) -> str:
    return f"otp:{TAG}:m:{minute}"


def hour_key(hour: int) -> str:
    return f"otp:{TAG}:h:{hour}"


def field(metric: str, service: str, country: str) -> str:
    return f"{metric}|{service}|{country}"


def parse_field(name: str) -> tuple[str, str, str] | None:
    parts = name.split("|")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def bounded_service(value: Any) -> str:
    """A service id as counted: the id itself when it looks like one, else ``other``."""
    if not value:
        return DEFAULT
    return value if isinstance(value, str) and _SERVICE.fullmatch(value) else "other"


def bounded_country(value: Any) -> str:
    return value if value in phonenumbers.SUPPORTED_REGIONS else "ZZ"


def service_of(verification: Any = None, service: Any = None) -> str:
    """The service a count belongs to: an explicit ``service`` id, else the verification's
    (its hash's ``svc``; the default service for records made before services)."""
    return bounded_service(service or getattr(verification, "service", None))
