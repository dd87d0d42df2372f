"""Real Redis topologies for tests, from Debian's ``redis-server`` and ``redis-cli``.

No Docker: every node is a ``redis-server`` of our own on a free loopback port, with its
own temporary directory, nothing saved (``--save "" --appendonly no``), and a clean
shutdown that removes the directory. Each topology is a context manager and offers the
``REDIS_URL`` the service is given and ``primaries()``: one client per node holding data,
to flush and to look inside.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.helpers import REDIS_SERVER, free_port, wait_for

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
HOST = "127.0.0.1"
SERVICE_NAME = "otp"


class Node:
    """One redis-server process; ``extra`` are further command-line options."""

    def __init__(self, *extra: str):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="otp-topology-"))
        self.extra = list(extra)
        self.process: subprocess.Popen | None = None

    def start(self, *head: str) -> Node:
        command = [REDIS_SERVER, *head, "--port", str(self.port), "--bind", HOST,
                   "--save", "", "--appendonly", "no", "--dir", str(self.dir), *self.extra]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_for(self.answers)
        return self

    def client(self, **options) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, decode_responses=True,
                           socket_timeout=2, socket_connect_timeout=2,
                           retry=Retry(NoBackoff(), 0), **options)

    def answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def info(self, section: str) -> dict:
        with self.client() as client:
            return client.info(section)

    def kill(self) -> None:
        """A crash: no goodbye to replicas or sentinels."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Topology:
    """Started on entering a ``with`` block, stopped (every process, every directory) on
    leaving it, also when starting failed halfway."""

    name = ""

    def start(self) -> Topology:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Topology:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


class Standalone(Topology):
    name = "standalone"

    def __init__(self):
        self.node = Node()

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.node.port}/0"

    def start(self) -> Standalone:
        self.node.start()
        return self

    def primaries(self) -> list[redis.Redis]:
        return [self.node.client()]

    def stop(self) -> None:
        self.node.stop()


class Cluster(Topology):
    """Three masters, no replicas, slots spread evenly by ``redis-cli --cluster create``."""

    name = "cluster"

    def __init__(self, masters: int = 3):
        # the bus port is chosen too: port + 10000 may be taken or beyond 65535
        self.nodes = [Node("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                           "--cluster-node-timeout", "2000", "--cluster-port", str(free_port()))
                      for _ in range(masters)]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{n.port}" for n in self.nodes)

    def start(self) -> Cluster:
        for node in self.nodes:
            node.start()
        addresses = [f"{HOST}:{n.port}" for n in self.nodes]
        subprocess.run([REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "0",
                        "--cluster-yes"], check=True, capture_output=True, timeout=30)
        wait_for(self._ready, timeout=20)
        return self

    def _ready(self) -> bool:
        """Every node sees every slot served and knows every other node."""
        wanted = ("cluster_state:ok", "cluster_slots_ok:16384",
                  f"cluster_known_nodes:{len(self.nodes)}")
        for node in self.nodes:
            with node.client() as client:
                state = client.execute_command("CLUSTER", "INFO").split()
            if not all(line in state for line in wanted):
                return False
        return True

    def primaries(self) -> list[redis.Redis]:
        return [n.client() for n in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class Sentinel(Topology):
    """A primary, one replica and one sentinel that fails over after ~1 s of silence."""

    name = "sentinel"

    def __init__(self, down_after_ms: int = 1000):
        no_delay = ("--repl-diskless-sync-delay", "0")  # a replica syncs at once
        self.primary = Node(*no_delay)
        self.replica = Node(*no_delay, "--replicaof", HOST, str(self.primary.port))
        self.sentinel = Node()
        self.down_after_ms = down_after_ms

    @property
    def url(self) -> str:
        return f"redis+sentinel://{HOST}:{self.sentinel.port}/{SERVICE_NAME}"

    def start(self) -> Sentinel:
        self.primary.start()
        self.replica.start()
        with self.primary.client() as client:
            client.set("topology:started", "1")  # something for the replica to acknowledge
        wait_for(self._replica_online)
        config = self.sentinel.dir / "sentinel.conf"  # sentinel rewrites its own file
        config.write_text("\n".join([
            f"sentinel monitor {SERVICE_NAME} {HOST} {self.primary.port} 1",
            f"sentinel down-after-milliseconds {SERVICE_NAME} {self.down_after_ms}",
            f"sentinel failover-timeout {SERVICE_NAME} 5000",
            f"sentinel parallel-syncs {SERVICE_NAME} 1", ""]))
        self.sentinel.start(str(config), "--sentinel")
        wait_for(self._replica_known, timeout=20)
        return self

    def _replica_online(self) -> bool:
        """The primary streams to the replica and has its acknowledgement (what WAIT
        counts), not merely a link."""
        replica = self.primary.info("replication").get("slave0")
        return isinstance(replica, dict) and replica["state"] == "online" and replica["offset"] > 0

    def _sentinel_call(self, *args):
        with self.sentinel.client() as client:
            return client.execute_command("SENTINEL", *args)

    def _replica_known(self) -> bool:
        replicas = self._sentinel_call("REPLICAS", SERVICE_NAME)
        return any(_fields(r).get("flags") == "slave" for r in replicas)

    def primary_port(self) -> int:
        host, port = self._sentinel_call("GET-MASTER-ADDR-BY-NAME", SERVICE_NAME)
        return int(port)

    def wait_for_promotion(self, timeout: float = 20) -> None:
        """Until the sentinel names the replica as a healthy primary (what clients ask)
        and the replica acts as one."""
        def promoted() -> bool:
            state = _fields(self._sentinel_call("MASTER", SERVICE_NAME))
            return (int(state["port"]) == self.replica.port and state["flags"] == "master"
                    and self.replica.info("replication")["role"] == "master")

        wait_for(promoted, timeout=timeout, interval=0.02)

    @contextmanager
    def replication_stalled(self, backlog_mb: int = 32):
        """The replica frozen and the primary's replication stream backed up behind
        ``backlog_mb`` of filler (more than the socket buffers hold), so that what the
        primary writes meanwhile reaches no replica before the primary is lost."""
        os.kill(self.replica.process.pid, signal.SIGSTOP)
        try:
            with self.primary.client() as client:
                client.set("filler", "x" * (backlog_mb << 20))
            yield
        finally:
            os.kill(self.replica.process.pid, signal.SIGCONT)
        if self.primary.process.poll() is None:
            wait_for(self._caught_up)

    def _caught_up(self) -> bool:
        info = self.primary.info("replication")
        replica = info.get("slave0")
        return isinstance(replica, dict) and replica["offset"] >= info["master_repl_offset"]

    def primaries(self) -> list[redis.Redis]:
        current = self.replica if self.primary_port() == self.replica.port else self.primary
        return [current.client()]

    def stop(self) -> None:
        for node in (self.sentinel, self.replica, self.primary):
            node.stop()


def _fields(flat) -> dict:
    """SENTINEL answers are flat name/value lists under RESP2."""
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=True))


TOPOLOGIES = {"standalone": Standalone, "cluster": Cluster, "sentinel": Sentinel}
