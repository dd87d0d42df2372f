"""The replica guard: a decision acted on outside Redis is on a replica before it is acted on.

Asynchronous replication can lose the last writes in a failover. A send reserved before the
SMS goes out and a check claimed before the code goes to the gateway are therefore waited
for (WAIT) on a replica, when the primary has one in sync. A claim that was never settled
then survives a failover, and claim_attempt.lua settles it as a check without an answer (its
token is never asked again, which would approve a verified token for any code).
"""

from __future__ import annotations

import logging
import time

import redis
from redis.cluster import RedisCluster

log = logging.getLogger(__name__)

# how long a decision acted on outside Redis waits for a replica (healthy: a millisecond)
REPLICA_WAIT_MS = 100
REPLICA_CHECK_SECONDS = 1.0


class ReplicaGuard:
    def __init__(self, client: redis.Redis):
        self.redis = client
        self._warned = False
        self._replicas: dict[str, tuple[float, bool]] = {}  # node -> (checked until, in sync)

    def run(self, script, keys: list, args: list, acted_on: tuple[str, ...]):
        """The script's answer, and whether a replica (if the primary has one in sync) holds
        it when the answer is one the caller acts on outside Redis. WAIT counts only the
        writes of its own connection, so then both run on one connection to the keys' node;
        without a replica in sync the script runs on any pooled connection."""
        client, node = self.redis, ""
        if isinstance(client, RedisCluster):
            primary = client.get_node_from_key(keys[0])
            client, node = client.get_redis_connection(primary), primary.name
        if not self._replica_known_in_sync(client, node):
            return script(keys=keys, args=args, client=client), True
        with client.client() as pinned:
            answer = script(keys=keys, args=args, client=pinned)
            if answer[0] not in acted_on:
                return answer, True
            try:
                return answer, pinned.wait(1, REPLICA_WAIT_MS) >= 1
            except redis.exceptions.ResponseError as e:  # an ACL that allows INFO, not WAIT
                self._no_permission(e)
                return answer, True

    def _replica_known_in_sync(self, client, node: str) -> bool:
        """Whether the node has a replica in sync, asked at most once a second per node: the
        answer changes with topology, not per request, and INFO is a round trip."""
        until, in_sync = self._replicas.get(node, (0.0, False))
        if time.monotonic() >= until:
            try:
                in_sync = self._replica_in_sync(client.info("replication"))
            except redis.exceptions.ResponseError as e:  # the embedded store, or an ACL
                self._no_permission(e)
                in_sync = False
            self._replicas[node] = (time.monotonic() + REPLICA_CHECK_SECONDS, in_sync)
        return in_sync

    def _no_permission(self, error: redis.exceptions.ResponseError) -> None:
        if isinstance(error, redis.exceptions.NoPermissionError) and not self._warned:
            self._warned = True
            log.warning("the Redis user may not run INFO or WAIT: sends and checks "
                        "do not wait for a replica; a failover may forget the latest")

    @staticmethod
    def _replica_in_sync(info: dict) -> bool:
        """A replica streaming and acknowledging. One still receiving a full copy is not
        waited for: it would refuse every send and check until it is done."""
        return any(name.startswith("slave") and isinstance(replica, dict)
                   and replica.get("state") == "online" and int(replica.get("offset", 0)) > 0
                   for name, replica in info.items())
