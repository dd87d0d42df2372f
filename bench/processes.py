"""The parts under test, each in its own process (no GIL shared with the load generator):
a private redis-server, the ASPSMS simulator, and apps under the production gunicorn
settings; plus their CPU time, read from /proc."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.helpers import RedisServer, free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
SIM_USER, SIM_PASSWORD = "SIMUSER", "simpass"  # the simulator command's defaults
CLIENT_KEY = "bench-client-key-0123456789"
CREDITS = 10**9  # a run sends tens of thousands of SMS; running dry would be status 5
TICKS = os.sysconf("SC_CLK_TCK")
UNLIMITED = "1000000 per hour"  # limits and budgets out of the way: we measure their cost only
# a login backend names its end user (issue 17): the flows count the end-user IP limits
END_USER = {"end_user_ip": "198.51.100.7"}
LIMIT_VARIABLES = (
    "OTP_LIMIT_START_PER_PHONE", "OTP_LIMIT_START_PER_IP", "OTP_LIMIT_CHECK_PER_IP",
    "OTP_LIMIT_CHECK_PER_PHONE",
    "OTP_LIMIT_PER_CLIENT", "OTP_BUDGET_PER_PREFIX", "OTP_BUDGET_PER_COUNTRY",
    "OTP_BUDGET_GLOBAL",
)


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU time of the processes (all their threads), in seconds."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (proc(5) fields 14, 15)
    return ticks / TICKS


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores, every process), in seconds."""
    with open("/proc/stat") as handle:
        ticks = [int(v) for v in handle.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / TICKS  # up to steal; guest time is inside user


def children(parent: int) -> list[int]:
    """Pids whose parent is ``parent`` (gunicorn's workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and int(fields[1]) == parent:
                found.append(int(entry))
    return sorted(found)


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            # the command name may contain spaces; everything after its ")" is positional
            return handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


class Child:
    """A child process writing to a log file; stop() ends exactly this process."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logdir: Path):
        self.name = name
        self.log_path = logdir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
        return True

    def log_tail(self, size: int = 3000) -> str:
        return self.log_path.read_bytes()[-size:].decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class Simulator(Child):
    """`aspsms-verify simulator` in its own process, with a keep-alive control connection."""

    def __init__(self, logdir: Path):
        self.port = free_port()
        command = [sys.executable, "-m", "service.cli", "simulator", "--port", str(self.port),
                   "--userkey", SIM_USER, "--password", SIM_PASSWORD, "--credits", str(CREDITS)]
        super().__init__("simulator", command, dict(os.environ), logdir)
        self.url = f"http://127.0.0.1:{self.port}"
        self._control: http.client.HTTPConnection | None = None
        wait_for(lambda: self.alive() and self._answers(), timeout=20)

    def _answers(self) -> bool:
        try:
            return requests.get(self.url + "/_sim/stats", timeout=0.5).ok
        except requests.RequestException:
            return False

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        """One /_sim/ call on a connection kept open, so control adds no connections."""
        if self._control is None:
            self._control = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload else {}
        self._control.request(method, path, body=payload, headers=headers)
        response = self._control.getresponse()
        answer = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"simulator {method} {path}: {response.status} {answer}")
        return answer

    def reset(self) -> None:
        """Forget messages, tokens and deliveries (the message list is scanned per read)."""
        self.control("POST", "/_sim/reset", {"credits": CREDITS})

    def set_latency(self, seconds: float) -> None:
        """A delay-only fault: every gateway call answers normally after ``seconds``."""
        if seconds > 0:
            self.control("POST", "/_sim/faults", {"delay": seconds})
        else:
            self.control("DELETE", "/_sim/faults")

    def connections_opened(self) -> int:
        return self.control("GET", "/_sim/stats")["connections_opened"]

    def pids(self) -> list[int]:
        return [self.process.pid]


class Gunicorn(Child):
    """An app under ``gunicorn -c python:service.gunicorn_conf``, the production settings."""

    def __init__(self, name: str, app: str, env: dict[str, str], logdir: Path):
        self.port = free_port()
        full_env = {**os.environ, **env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        command = [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf", app]
        super().__init__(name, command, full_env, logdir)
        self.url = f"http://127.0.0.1:{self.port}"
        self.threads = int(full_env.get("GUNICORN_THREADS", "64"))
        wait_for(lambda: self.alive() and self._healthy(), timeout=30)
        self.worker_pids = wait_for(self._all_workers, timeout=10)

    def _healthy(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=0.5).status_code == 200
        except requests.RequestException:
            return False

    def _all_workers(self) -> list[int] | None:
        found = children(self.process.pid)
        return found if len(found) == int(os.environ.get("WEB_CONCURRENCY", "2")) else None

    def workers_unchanged(self) -> bool:
        """False if a worker was replaced (its CPU time would then be lost)."""
        return children(self.process.pid) == self.worker_pids

    def worker_cpu(self) -> list[float]:
        return [cpu_seconds([pid]) for pid in self.worker_pids]


def service_env(redis_url: str, simulator_url: str) -> dict[str, str]:
    """Like tests/conftest.py service_env, with every limit raised and no resend cooldown."""
    env = {
        "ASPSMS_USERKEY": SIM_USER, "ASPSMS_PASSWORD": SIM_PASSWORD,
        "ASPSMS_ORIGINATOR": "Verify", "ASPSMS_URL": simulator_url,
        "REDIS_URL": redis_url, "OTP_SECRET": "bench-secret-0123456789abcdef",
        "OTP_API_KEYS": f"bench:{CLIENT_KEY}", "OTP_ADMIN_KEYS": "ops:bench-admin-key-0123456789",
        "OTP_RESEND_COOLDOWN": "0",
    }
    env.update(dict.fromkeys(LIMIT_VARIABLES, UNLIMITED))
    return env


def start_redis() -> RedisServer:
    return RedisServer().start()
