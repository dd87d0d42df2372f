"""The event streams as the workers use them: new entries through the consumer group,
entries a dead worker held claimed back (XAUTOCLAIM), retries by due time.

Beside each stream (keys of its slot, so each step is one atomic MULTI on a cluster too):
``<stream>:due``, a sorted set of the entries waiting for another attempt, scored by when
(ms), and ``<stream>:try``, their attempts so far. A first attempt that fails acknowledges
the entry and enters it there in one transaction; a retry is taken with a lease (its due
time moves LEASE_MS on), so a worker that dies while trying leaves it due again. A
delivered, dropped or failed entry is deleted from the stream: what a stream holds is what
is not yet delivered, and its first entry is the oldest undelivered event.
"""

from __future__ import annotations

import redis as redis_lib
from redis.cluster import RedisCluster

from service.verification.event_log import GROUP, EventLog, tries_key
from service.webhooks.payload import Event

LEASE_MS = 60_000
_TAKE_DUE = """
local taken = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])) do
  local entry = redis.call('XRANGE', KEYS[1], id, id)
  if #entry == 0 then
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
  else
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    table.insert(taken, {id, entry[1][2], redis.call('HGET', KEYS[3], id) or '1'})
  end
end
return taken
"""


def _due(stream: str) -> str:
    return stream + ":due"


def _fields(flat: list) -> dict[str, str]:
    return dict(zip(flat[0::2], flat[1::2], strict=True))


class Queue:
    def __init__(self, client, event_log: EventLog, consumer: str):
        self.redis = client
        self.event_log = event_log
        self.consumer = consumer
        self._take_due = client.register_script(_TAKE_DUE)

    def streams(self) -> list[str]:
        """Every event stream there is (a cluster: SCAN on each primary)."""
        pattern = self.event_log.streams_pattern()
        if not isinstance(self.redis, RedisCluster):
            return [pattern] if self.redis.exists(pattern) else []
        return sorted(set(self.redis.scan_iter(match=pattern, _type="stream", count=1000,
                                               target_nodes=RedisCluster.PRIMARIES)))

    def read_new(self, stream: str, count: int) -> list[Event]:
        try:
            answer = self.redis.xreadgroup(GROUP, self.consumer, {stream: ">"}, count=count)
        except redis_lib.ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            self._create_group(stream)
            return []
        return [Event(stream, entry_id, fields)
                for _, entries in answer or [] for entry_id, fields in entries if fields]

    def _create_group(self, stream: str) -> None:
        try:
            self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis_lib.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def claim_stale(self, stream: str, idle_ms: int, count: int) -> list[Event]:
        """Entries another consumer read and neither delivered nor scheduled for
        ``idle_ms``: a worker that died holding them."""
        answer = self.redis.xautoclaim(stream, GROUP, self.consumer, idle_ms, "0-0",
                                       count=count)
        return [Event(stream, entry_id, fields) for entry_id, fields in answer[1] if fields]

    def take_due(self, stream: str, now_ms: int, count: int) -> list[tuple[Event, int]]:
        """Retries due by ``now_ms``, each with its attempts so far, leased LEASE_MS."""
        taken = self._take_due(keys=[stream, _due(stream), tries_key(stream)],
                               args=[now_ms, now_ms + LEASE_MS, count])
        return [(Event(stream, entry_id, _fields(flat)), int(tries))
                for entry_id, flat, tries in taken]

    def finish(self, event: Event, retried: bool = True) -> None:
        """Delivered, failed for good, or not wanted: gone from the stream (``retried``:
        it may wait among the retries too)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(event.stream, GROUP, event.entry_id)
        pipe.xdel(event.stream, event.entry_id)
        if retried:
            pipe.zrem(_due(event.stream), event.entry_id)
            pipe.hdel(tries_key(event.stream), event.entry_id)
        pipe.execute()

    def retry_at(self, event: Event, attempts: int, due_ms: int) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(event.stream, GROUP, event.entry_id)
        pipe.zadd(_due(event.stream), {event.entry_id: due_ms})
        pipe.hset(tries_key(event.stream), event.entry_id, attempts)
        pipe.execute()

    def keep(self, stream: str, pending: list[str], leased: list[str], due_ms: int) -> None:
        """Entries this worker holds and has not yet tried: read ones claimed afresh (idle
        0), taken retries leased on to ``due_ms``, so no worker takes them over as a dead
        worker's (one pipeline)."""
        pipe = self.redis.pipeline(transaction=False)
        if pending:
            pipe.xclaim(stream, GROUP, self.consumer, 0, pending, justid=True)
        if leased:
            pipe.zadd(_due(stream), dict.fromkeys(leased, due_ms), xx=True)
        pipe.execute()

    def backlog(self, streams: list[str], now_ms: int) -> tuple[int, float]:
        """(retries waiting, age in seconds of the oldest undelivered event) over
        ``streams``, one pipeline per stream."""
        waiting, oldest = 0, now_ms
        for stream in streams:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zcard(_due(stream))
            pipe.xrange(stream, count=1)
            count, first = pipe.execute()
            waiting += count
            if first:
                oldest = min(oldest, int(first[0][0].split("-")[0]))
        return waiting, max(0.0, (now_ms - oldest) / 1000)

    def waiting(self, streams: list[str]) -> int:
        """Events not yet delivered (new, in flight or waiting for a retry) in ``streams``."""
        pipe = self.redis.pipeline(transaction=False)
        for stream in streams:
            pipe.xlen(stream)
        return sum(pipe.execute()) if streams else 0


def waiting_events(store) -> int | None:
    """The dashboard's webhook backlog: events not yet delivered; None while no service
    takes webhooks (the figure is hidden)."""
    if not store.events.enabled():
        return None
    queue = Queue(store.redis, store.events, "dashboard")
    return queue.waiting(queue.streams())
