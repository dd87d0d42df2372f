"""Figures of one measured point, medians over repeats, the table and the JSON file."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from pathlib import Path

from bench.driver import Sample
from bench.redis_stats import delta

PERCENTILES = (50, 95, 99)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p % of values at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _latency(values: list[float]) -> dict[str, float | None]:
    return {f"p{p}": percentile(values, p) for p in PERCENTILES}


def _per_flow(value: float, flows: int) -> float | None:
    return value / flows if flows else None


def _cores(sample: Sample, before: dict, after: dict, workers: list[float]) -> dict:
    """Cores used during the point by each part, and by everything else on the machine."""
    elapsed = sample.elapsed
    cores = {
        "app": sum(workers) / elapsed,
        "redis": (after["redis_cpu"] - before["redis_cpu"]) / elapsed,
        "simulator": (after["sim_cpu"] - before["sim_cpu"]) / elapsed,
        "driver": sample.driver_cpu_s / elapsed,
    }
    busy = (after["machine_busy"] - before["machine_busy"]) / elapsed
    cores["other"] = max(0.0, busy - sum(cores.values()))  # noise: processes not ours
    return cores


def _gateway_connections(key: dict, sample: Sample, before: dict, after: dict) -> int | None:
    if key["target"] == "simulator":
        return None  # the driver itself is the gateway's client there
    return (after["sim_connections"] - before["sim_connections"]
            - sample.driver_sim_connections)


def point(key: dict, sample: Sample, before: dict, after: dict) -> dict:
    """One row: `key` (target, latency, concurrency, repeat) and the figures of `sample`,
    with the other processes' counters read before and after it."""
    flows = sample.flows
    commands = delta(before["commands"], after["commands"])
    workers = [b - a for a, b in zip(before["workers"], after["workers"], strict=True)]
    return {
        **key,
        "flows": flows,
        "elapsed_s": sample.elapsed,
        "flows_per_s": flows / sample.elapsed,
        "start_ms": _latency(sample.start_ms),
        "check_ms": _latency(sample.check_ms),
        "errors": sum(sample.errors.values()),
        "error_kinds": dict(sample.errors),
        "redis_commands_per_flow": _per_flow(sum(commands.values()), flows),
        "redis_by_command": {name: n / flows for name, n in commands.items()} if flows else {},
        "gateway_connections": _gateway_connections(key, sample, before, after),
        "service_cpu_ms_per_flow": _per_flow(sum(workers) * 1000, flows),
        "worker_cpu_s": workers,
        "cores_used": _cores(sample, before, after, workers),
        "driver_cpu_pct": 100 * sample.driver_cpu_s / sample.elapsed,
        "workers_unchanged": after["workers_unchanged"],
    }


def _median(values: list):
    """Median of numbers, key by key through dicts; None where nothing was measured."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    if isinstance(present[0], dict):
        keys = sorted({k for v in present for k in v})
        return {k: _median([v.get(k) for v in present]) for k in keys}
    if isinstance(present[0], bool) or not isinstance(present[0], int | float):
        return present[-1]
    return statistics.median(present)


def medians(rows: list[dict], fields: tuple[str, ...]) -> list[dict]:
    """One row per (target, latency, concurrency): the median of each figure over repeats."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[f] for f in fields), []).append(row)
    summary = []
    for key, group in groups.items():
        merged = {name: _median([row.get(name) for row in group]) for name in group[0]}
        merged.update(zip(fields, key, strict=True))
        merged["repeats"] = len(group)
        merged["errors_total"] = sum(row["errors"] for row in group)
        merged["error_kinds"] = dict(sum((Counter(r["error_kinds"]) for r in group), Counter()))
        merged.pop("repeat", None)
        summary.append(merged)
    return summary


def add_ratios(summary: list[dict]) -> None:
    """service ÷ baseline flows/s at the same gateway latency and concurrency."""
    baseline = {(r["latency_ms"], r["concurrency"]): r["flows_per_s"]
                for r in summary if r["target"] == "baseline"}
    for row in summary:
        base = baseline.get((row["latency_ms"], row["concurrency"]))
        row["ratio_to_baseline"] = row["flows_per_s"] / base if base else None


def add_run_ratios(summary: list[dict], rows: list[dict]) -> None:
    """Each run's own service ÷ baseline (the two points measured back to back), so the
    spread between runs shows next to the ratio of the medians."""
    flows = {(r["target"], r["latency_ms"], r["concurrency"], r["repeat"]): r["flows_per_s"]
             for r in rows}
    for row in summary:
        if row["target"] != "service":
            continue
        ratios = []
        for (target, latency, concurrency, repeat), value in sorted(flows.items()):
            base = flows.get(("baseline", latency, concurrency, repeat))
            if (target, latency, concurrency) == ("service", row["latency_ms"],
                                                  row["concurrency"]) and base:
                ratios.append(round(value / base, 3))
        row["ratio_per_run"] = ratios


def _run_ratios_text(summary: list[dict]) -> list[str]:
    lines = ["Service ÷ baseline in each run (measured back to back; the spread is the noise):"]
    for row in summary:
        if row.get("ratio_per_run"):
            lines.append(f"  {row['latency_ms']:4.0f} ms c={row['concurrency']:<4} "
                         + " ".join(f"{r:.2f}" for r in row["ratio_per_run"]))
    return lines


_COLUMNS = (
    ("target", 9, "{}"), ("gw ms", 5, "{:.0f}"), ("conc", 4, "{}"), ("flows/s", 7, "{:.0f}"),
    ("start p50/p95/p99 ms", 20, "{}"), ("check p50/p95/p99 ms", 20, "{}"), ("err", 4, "{}"),
    ("÷base", 5, "{:.2f}"), ("redis/fl", 8, "{:.1f}"), ("gw conn", 7, "{}"),
    ("cpu ms/fl", 9, "{:.1f}"), ("drv cpu", 7, "{:.0f}%"),
)


def _triple(latency: dict) -> str:
    values = [latency.get(f"p{p}") for p in PERCENTILES]
    return "/".join("-" if v is None else f"{v:.0f}" if v >= 10 else f"{v:.1f}" for v in values)


def _cells(row: dict) -> list:
    return [row["target"], row["latency_ms"], row["concurrency"], row["flows_per_s"],
            _triple(row["start_ms"]), _triple(row["check_ms"]), row["errors_total"],
            row.get("ratio_to_baseline"), row["redis_commands_per_flow"],
            row["gateway_connections"], row["service_cpu_ms_per_flow"], row["driver_cpu_pct"]]


def table(summary: list[dict]) -> str:
    """The summary as fixed-width text, one line per target × latency × concurrency."""
    header = " ".join(name.rjust(width) for name, width, _ in _COLUMNS)
    lines = [header, "-" * len(header)]
    for row in summary:
        cells = [("-" if value is None else fmt.format(value)).rjust(width)
                 for (_, width, fmt), value in zip(_COLUMNS, _cells(row), strict=True)]
        lines.append(" ".join(cells))
    return "\n".join(lines)


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def _where(row: dict) -> str:
    return f"{row['target']:9} {row['latency_ms']:3.0f} ms c={row['concurrency']:<3}"


def _commands(summary: list[dict]) -> list[str]:
    lines = ["Redis commands per flow (INFO commandstats, script-internal ones included):"]
    for row in summary:
        if row["target"] != "simulator" and row["redis_by_command"]:
            listed = ", ".join(f"{name} {count:.1f}" for name, count in
                               sorted(row["redis_by_command"].items(), key=lambda i: -i[1])
                               if count >= 0.05)
            lines.append(f"  {_where(row)} {row['redis_commands_per_flow']:.1f}: {listed}")
    return lines


def _trace(traces: dict) -> list[str]:
    lines = ["Redis per request, traced with MONITOR (round trips | run inside scripts):"]
    for target, steps in traces.items():
        for step, kinds in steps.items():
            trips = ", ".join(f"{n} {c:g}" for n, c in kinds["round_trips"].items())
            inside = ", ".join(f"{n} {c:g}" for n, c in kinds["in_scripts"].items())
            lines.append(f"  {target:8} {step:5} {sum(kinds['round_trips'].values()):g} trips:"
                         f" {trips} | {inside or '-'}")
    return lines


_PARTS = ("app", "redis", "simulator", "driver", "other")


def _cores_text(summary: list[dict]) -> list[str]:
    lines = ["CPU cores used (app workers / redis / simulator / driver / other processes):"]
    for row in summary:
        cores = row["cores_used"]
        shares = " / ".join(f"{cores[part]:.2f}" for part in _PARTS)
        lines.append(f"  {_where(row)} {shares}")
    return lines


def render(document: dict) -> str:
    """The whole text report: tables, Redis breakdown, CPU shares and the verdicts."""
    machine = document["machine"]
    order = sorted(document["summary"],
                   key=lambda r: (r["latency_ms"], r["concurrency"], r["target"] != "service"))
    parts = [f"\nMachine: {machine['cpus']} × {machine['cpu']} (shared); gunicorn "
             f"{machine['workers']} workers × {machine['threads']} threads; figures are "
             f"medians of {document['settings']['repeat']} run(s) of "
             f"{document['settings']['duration']:g} s each.",
             "\nSimulator alone:", table(document["simulator_alone"]),
             "\nService and baseline:", table(order), "", *_run_ratios_text(order), "",
             *_commands(order), "",
             *_trace(document["redis_trace"]), "", *_cores_text(order),
             "", f"Gateway connections opened, whole run: {document['gateway_connections_total']}",
             "", "Targets:"]
    for verdict in document["verdicts"]:
        mark = {True: "met ", False: "MISS", None: "info"}[verdict["met"]]
        parts.append(f"  [{mark}] {verdict['goal']}: {verdict['figure']}")
    return "\n".join(parts)
