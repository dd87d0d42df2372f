"""`python3 -m bench.spy`: where the gunicorn workers spend their CPU under load.

Starts redis-server, the simulator and one app (the service, or ``--baseline``) under the
production gunicorn settings, drives complete flows at one concurrency and gateway latency,
and meanwhile samples every worker with py-spy (``--gil``: only the thread holding the GIL,
so only Python that runs, not threads waiting on Redis or the gateway). Prints each frame's
inclusive share of the samples, and with ``--under NAME`` the split below the frames whose
name contains NAME. Shares, not seconds: compare them between runs, not across machines.
py-spy needs ptrace (root, or CAP_SYS_PTRACE); `pip install py-spy`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from bench import driver
from bench.processes import Gunicorn, Simulator, service_env, start_redis

_LINE = re.compile(r":\d+\)$")
_PREFIX = re.compile(r" \(/[^ ]*?site-packages/| \(/[^ ]*?lib/python3\.\d+/")


def _frame(raw: str) -> str:
    """``name (package/module.py)``: line numbers and install prefixes dropped."""
    return _PREFIX.sub(" (", _LINE.sub(")", raw))


def read_stacks(paths: list[Path]) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) output: one ``frame;frame;... count`` per line."""
    stacks = []
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack:
                stacks.append(([_frame(f) for f in stack.split(";")], int(count)))
    return stacks


def inclusive(stacks) -> tuple[Counter, int]:
    shares, total = Counter(), 0
    for frames, count in stacks:
        total += count
        for frame in set(frames):
            shares[frame] += count
    return shares, total


def below(stacks, name: str) -> Counter:
    """Samples under the first frame containing ``name``, by the frame right below it."""
    split = Counter()
    for frames, count in stacks:
        at = next((i for i, frame in enumerate(frames) if name in frame), None)
        if at is not None:
            split[frames[at + 1] if at + 1 < len(frames) else "<itself>"] += count
    return split


def record(app: Gunicorn, sim: Simulator, args, outdir: Path) -> list[Path]:
    outputs = [outdir / f"worker-{pid}.txt" for pid in app.worker_pids]
    spies = [subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--duration", str(int(args.duration)),
         "--rate", str(args.rate), "--format", "raw", "--gil", "--nonblocking",
         "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for pid, out in zip(app.worker_pids, outputs, strict=True)]
    target = (driver.baseline if args.baseline else driver.service)(app.url)
    sample = driver.run_point(target, sim.url, args.concurrency, args.duration + 2)
    for spy in spies:
        spy.wait(timeout=60)
    print(f"{sample.flows / sample.elapsed:.0f} flows/s while sampling, "
          f"{len(sample.errors)} kinds of error")
    return [out for out in outputs if out.exists()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.spy", description=__doc__)
    parser.add_argument("--baseline", action="store_true", help="sample the baseline app")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds sampled")
    parser.add_argument("--rate", type=int, default=400, help="samples per second")
    parser.add_argument("--top", type=int, default=60, help="frames listed")
    parser.add_argument("--under", action="append", default=[], metavar="NAME",
                        help="also split the samples below this frame (repeatable)")
    args = parser.parse_args(argv)
    if shutil.which("py-spy") is None:
        parser.error("py-spy is not installed: pip install py-spy")

    # the directory outlives the processes writing their logs into it
    with tempfile.TemporaryDirectory(prefix="aspsms-spy-") as tmp, ExitStack() as stack:
        outdir = Path(tmp)
        redis_server = start_redis()
        stack.callback(redis_server.stop)
        sim = Simulator(outdir)
        stack.callback(sim.stop)
        app_spec = "bench.baseline:create_app()" if args.baseline else "service:create_app()"
        app = Gunicorn("app", app_spec, service_env(redis_server.url, sim.url), outdir)
        stack.callback(app.stop)
        sim.reset()
        warm = (driver.baseline if args.baseline else driver.service)(app.url)
        driver.run_point(warm, sim.url, args.concurrency, 2)  # pools, scripts, imports
        sim.set_latency(args.latency_ms / 1000)
        stacks = read_stacks(record(app, sim, args, outdir))

    shares, total = inclusive(stacks)
    if not total:
        print("no samples: is ptrace allowed here?")
        return 1
    print(f"{total} samples with the GIL held, inclusive share of each frame:")
    for frame, count in shares.most_common(args.top):
        print(f"  {100 * count / total:5.1f} %  {frame}")
    for name in args.under:
        print(f"below {name!r}:")
        for frame, count in below(stacks, name).most_common(20):
            print(f"  {100 * count / total:5.1f} %  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
