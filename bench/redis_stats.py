"""What a flow costs in Redis.

INFO commandstats counts every command, including those a Lua script runs inside Redis, so
its delta ÷ flows is the work per flow. Round trips (what the issue's budget counts: one
per limit, one per state decision) are only visible in MONITOR, which marks script-internal
commands; a traced run of a few sequential flows between ECHO markers attributes each
command to the request that sent it, and names every EVALSHA after its script.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter
from importlib import resources
from pathlib import Path

import aiohttp
import redis

from bench import driver
from service.verification.scripts import script_source

MARK = "bench-mark:"
PIPELINE_GAP_S = 50e-6  # pipelined commands: ~10 µs apart; separate round trips: ≥ 90 µs
# The harness's own commands inside a measured delta: the INFO of the first snapshot
# (each INFO reports the calls before it; the service's own INFO calls still count).
OWN = Counter({"INFO": 1})


def commandstats(client: redis.Redis) -> Counter:
    return Counter({name.removeprefix("cmdstat_").upper(): stats["calls"]
                    for name, stats in client.info("commandstats").items()})


def delta(before: Counter, after: Counter) -> dict[str, int]:
    """Commands run between two snapshots, the harness's own left out."""
    ran = after - before - OWN
    return dict(sorted(ran.items()))


def script_names() -> dict[str, str]:
    """sha1 → name for the service's Lua scripts and those of the `limits` library."""
    names = {}
    for path in Path(str(resources.files("service.verification").joinpath("lua"))).glob("*.lua"):
        source = script_source(path.stem)  # as loaded: some carry a shared prelude
        names[hashlib.sha1(source.encode()).hexdigest()] = path.stem
    limits_lua = resources.files("limits").joinpath("resources/redis/lua_scripts")
    for path in Path(str(limits_lua)).glob("*.lua"):
        names[hashlib.sha1(path.read_bytes()).hexdigest()] = path.stem
    return names


def _label(command: str, names: dict[str, str]) -> str:
    parts = command.split()
    name = parts[0].upper()
    if name == "EVALSHA" and len(parts) > 1:
        return f"EVALSHA {names.get(parts[1].lower(), parts[1][:8])}"
    return name


def _collect(monitor, lines: list[dict]) -> None:
    while True:
        entry = monitor.next_command()
        lines.append(entry)
        if entry["command"].startswith("ECHO " + MARK + "done"):
            return


async def _traced_flows(target, sim_url: str, flows: int, mark, own: driver.Sample) -> None:
    async with (aiohttp.ClientSession(timeout=driver.TIMEOUT) as app,
                aiohttp.ClientSession(timeout=driver.TIMEOUT,
                                      trace_configs=[driver.counting_trace(own)]) as sim):
        for _ in range(flows):
            phone = driver.next_phone()
            mark("start")
            ident = await target.start(app, target.url, phone)
            mark("read")
            code = await driver.read_code(sim, sim_url, phone)
            mark("check")
            await target.check(app, target.url, ident, phone, code)
            mark("idle")


def _round_trips(lines: list[dict], names: dict[str, str]):
    """(label, step, is_script_internal) per round trip; a pipeline is one round trip: its
    commands arrive together from one connection, microseconds apart."""
    step, last = "idle", None
    for entry in lines:
        command = entry["command"]
        if command.startswith("ECHO " + MARK):
            if last:
                yield _pipeline(last[2]), last[3], False
            step, last = command.split(MARK, 1)[1].split()[0], None
            continue
        if entry["client_type"] == "lua":
            yield _label(command, names), step, True
            continue
        client = (entry["client_address"], entry["client_port"])
        if last and last[0] == client and entry["time"] - last[1] < PIPELINE_GAP_S:
            last[2].append(_label(command, names))
        else:
            if last:
                yield _pipeline(last[2]), last[3], False
            last = [client, entry["time"], [_label(command, names)], step]
        last[1] = entry["time"]
    if last:
        yield _pipeline(last[2]), last[3], False


def _pipeline(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else f"PIPELINE({'+'.join(labels)})"


def _attribute(lines, names, flows: int) -> dict:
    counts: dict[str, dict[str, Counter]] = {}
    for label, step, internal in _round_trips(lines, names):
        kinds = counts.setdefault(step, {"round_trips": Counter(), "in_scripts": Counter()})
        kinds["in_scripts" if internal else "round_trips"][label] += 1
    return {step: {kind: {name: n / flows for name, n in sorted(c.items())}
                   for kind, c in kinds.items()}
            for step, kinds in counts.items() if step in ("start", "check")}


def trace(redis_url: str, target, sim_url: str, flows: int = 20) -> tuple[dict, int]:
    """Per request of a flow: round trips and script-internal commands, by name, per flow;
    and the connections the tracer itself opened to the simulator."""
    own = driver.Sample()
    listener, marker = redis.Redis.from_url(redis_url), redis.Redis.from_url(redis_url)
    lines: list[dict] = []
    with listener.monitor() as monitor:
        collector = threading.Thread(target=_collect, args=(monitor, lines), daemon=True)
        collector.start()
        asyncio.run(_traced_flows(target, sim_url, flows, lambda s: marker.echo(MARK + s), own))
        marker.echo(MARK + "done")
        collector.join(30)
    marker.close()
    return _attribute(lines, script_names(), flows), own.driver_sim_connections
