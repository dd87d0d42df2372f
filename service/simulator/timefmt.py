"""Timestamp formats of the gateway (docs/gateway.md §5.1, §6.1, §6.4)."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .codes import Refusal

try:
    # "CET" on a Swiss gateway means Swiss local time; fall back to plain UTC+1 without tzdata.
    CET = ZoneInfo("Europe/Zurich")
except ZoneInfoNotFoundError:  # pragma: no cover - depends on the host's tz database
    CET = timezone(timedelta(hours=1), "CET")


def iso_utc(timestamp: float) -> str:
    """`2021-01-21T13:46:28Z`: JSON dates are UTC with whole seconds (docs/gateway.md §6.1)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_cet(timestamp: float) -> str:
    """`2021-01-21T14:46:28+01:00` for the <SCTSCET>/<DSCTSCET> callback tags."""
    return datetime.fromtimestamp(int(timestamp), CET).isoformat()


def compact_cet(timestamp: float) -> str:
    """`ddmmyyyyhhmmss` for the <SCTS>/<DSCTS> tags, in the XML interface's GMT+1 tradition."""
    return datetime.fromtimestamp(timestamp, CET).strftime("%d%m%Y%H%M%S")


def deferred_wait(value, now: float) -> float:
    """Seconds until DeferredDeliveryTime (0 when absent or past); bad formats are code 22.

    Clients send ISO 8601 (`…Z`, `…+02:00`); the XML style `ddmmyyyyhhmmss` (Swiss time) is
    accepted too (docs/gateway.md §11). A naive ISO time is read as UTC.
    """
    if value is None or value == "":
        return 0.0
    if not isinstance(value, str):
        raise Refusal("22")
    try:
        if len(value) == 14 and value.isdigit():
            moment = datetime.strptime(value, "%d%m%Y%H%M%S").replace(tzinfo=CET)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError as e:
        raise Refusal("22") from e
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)
