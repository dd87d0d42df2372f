"""Credits over time: the readings, the rate they fall at, and the days they will last.

The rate is measured since the last rise (a top-up), from the first reading after it to the
latest, and only over at least ``MIN_SPAN_MS``: minutes of readings say little about a
week. Days left = the latest balance ÷ that rate; None while it cannot be told (too short
a history, or credits that did not fall).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from service.verification.model import rfc3339

DAY_MS = 24 * 3600 * 1000
MIN_SPAN_MS = 3600 * 1000
MOST_POINTS = 200  # what a chart of a week can show


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def credits_trend(readings: list[tuple[int, Decimal]], now_ms: int) -> dict[str, Any]:
    """``readings``: (ms, credits), oldest first."""
    if not readings:
        return {"current": None, "read_at": None, "per_day": None, "days_left": None,
                "readings": []}
    start = len(readings) - 1
    while start > 0 and readings[start - 1][1] >= readings[start][1]:
        start -= 1
    (first_ms, first), (last_ms, last) = readings[start], readings[-1]
    per_day = days_left = None
    if last_ms - first_ms >= MIN_SPAN_MS:
        per_day = (first - last) * DAY_MS / (last_ms - first_ms)
        if per_day > 0:
            days_left = round(float(last / per_day), 1)
        per_day = round(float(per_day), 2)
    step = max(1, -(-len(readings) // MOST_POINTS))
    shown = readings[::-1][::step][::-1]  # evenly thinned, the latest always kept
    return {"current": _number(last), "read_at": rfc3339(last_ms), "per_day": per_day,
            "days_left": days_left,
            "readings": [{"at": rfc3339(ms), "credits": _number(value)} for ms, value in shown]}
