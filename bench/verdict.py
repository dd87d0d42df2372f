"""The issue's targets, checked against the median figures of a run."""

from __future__ import annotations

BASELINE_SHARE = 0.70  # service flows/s ÷ baseline's, gateway latency 0 ms
IDEAL_SHARE = 0.60  # of concurrency ÷ (two gateway calls × latency), slow gateway
CHECK_P99_MS = 50.0  # /otp/check at concurrency 32, gateway latency 0 ms
P99_CONCURRENCY = 32


def _rows(document: dict) -> dict[tuple, dict]:
    return {(r["target"], r["latency_ms"], r["concurrency"]): r for r in document["summary"]}


def _verdict(goal: str, figure: str, met: bool | None) -> dict:
    return {"goal": goal, "figure": figure, "met": met}


def _baseline_share(rows) -> list[dict]:
    found = []
    for (target, latency, concurrency), row in sorted(rows.items()):
        if target == "service" and latency == 0 and row["ratio_to_baseline"] is not None:
            ratio = row["ratio_to_baseline"]
            found.append(_verdict(f"0 ms, c={concurrency}: service ≥ 70 % of baseline flows/s",
                                  f"{100 * ratio:.0f} %", ratio >= BASELINE_SHARE))
    return found


def _slow_gateway(rows) -> list[dict]:
    found = []
    for (target, latency, concurrency), row in sorted(rows.items()):
        if target == "service" and latency > 0 and concurrency == max(
                c for t, la, c in rows if la == latency):
            ideal = concurrency / (2 * latency / 1000)
            found.append(_verdict(
                f"{latency:.0f} ms, c={concurrency}: ≥ 60 % of {ideal:.0f} flows/s (ideal)",
                f"{row['flows_per_s']:.0f} flows/s = {100 * row['flows_per_s'] / ideal:.0f} %",
                row["flows_per_s"] >= IDEAL_SHARE * ideal))
    return found


def _check_p99(rows) -> list[dict]:
    row = rows.get(("service", 0, P99_CONCURRENCY))
    if row is None or row["check_ms"]["p99"] is None:
        return []
    p99 = row["check_ms"]["p99"]
    return [_verdict("0 ms, c=32: p99 of /otp/check < 50 ms", f"{p99:.1f} ms",
                     p99 < CHECK_P99_MS)]


def _connections(document: dict) -> list[dict]:
    machine = document["machine"]
    limit = machine["workers"] * machine["threads"]
    opened = document["gateway_connections_total"].get("service")
    if opened is None:
        return []
    return [_verdict(f"gateway connections opened, whole run ≤ workers × threads ({limit})",
                     str(opened), opened <= limit)]


def _round_trips(document: dict) -> list[dict]:
    found = []
    for step, figures in document["redis_trace"].get("service", {}).items():
        trips = figures["round_trips"]
        listed = ", ".join(f"{name} ×{count:g}" for name, count in trips.items())
        found.append(_verdict(f"Redis round trips of {step} (≤ 1 per limit and decision)",
                              f"{sum(trips.values()):g}: {listed}", None))
    return found


def verdicts(document: dict) -> list[dict]:
    rows = _rows(document)
    return (_baseline_share(rows) + _slow_gateway(rows) + _check_p99(rows)
            + _connections(document) + _round_trips(document))
