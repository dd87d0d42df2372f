"""Connections to the state store: Redis in all its forms, or the sandbox's embedded store.

The URL forms are the ones the ``limits`` library understands, so one ``REDIS_URL`` serves
both the verification state and Flask-Limiter; ``rediss+cluster://`` and
``rediss+sentinel://`` add TLS, which ``limits`` spells as an option instead (see
:func:`limiter_storage_uri` and :func:`limiter_storage_options`). Socket and connect
timeouts are always set and the pool is bounded, so an unreachable Redis costs a request at
most the timeout.

No command is retried: a command that timed out may still have run, and running a decision
script twice would spend an attempt twice or reserve a send twice. A failed call answers
503 ``store_unavailable`` and the caller repeats the whole request. A broken pooled
connection is still replaced when it is next taken from the pool, and after a failover the
next connection asks the sentinels (or the cluster) where the primary now is.

A failed cluster command costs its own timeout and no more: redis-py re-reads the slot map
before it raises, asking each startup node in turn with the full timeout (a frozen cluster
of three: four timeouts, behind a lock every other thread queues on). Here that re-read
runs in one background thread instead (:func:`refresh_slots_in_background`), so a frozen
node answers 503 within ``REDIS_TIMEOUT`` and the map still follows a failover.

The failure policy lives here too, one tuple and one decorator for every caller: an error
of :data:`STORE_ERRORS` means the store could not carry the command out (it is unreachable,
loading, read-only, re-sharding, or full: Redis refuses a script at its first write when
over ``maxmemory``, before it changed anything), so it answers 503 ``store_unavailable``
and the caller repeats the whole request. An error a script raised is not one of them: it
is a bug in the script or its arguments, the same on every retry, and Redis does not undo
what the script wrote before it, so it is a 500 ``internal_error`` with its traceback,
whichever script raised it (the domain's, the budgets', Flask-Limiter's).
"""

from __future__ import annotations

import functools
import logging
import threading
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, NodesManager, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from service import waits
from service.errors import StoreUnavailable

log = logging.getLogger(__name__)
POOL_SIZE = 128  # at least the threads of a worker (gunicorn_conf: 64)
SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel",
           "rediss+sentinel")
STORE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.BusyLoadingError, redis.exceptions.ReadOnlyError,
                redis.exceptions.OutOfMemoryError,
                redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError,
                redis.exceptions.SlotNotCoveredError, redis.exceptions.AskError,
                # a cluster none of whose nodes answers
                redis.exceptions.RedisClusterException)


def store_call(method):
    """Redis trouble becomes one named decision: 503 store_unavailable, fail closed."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        waits.refuse_if_waited()  # a request waits for the store once (service/waits.py)
        try:
            return method(*args, **kwargs)
        except STORE_ERRORS as e:
            waits.note(e)
            raise StoreUnavailable("The state store is unavailable; nothing was done.") from e

    return wrapper


def _hosts(netloc: str) -> list[tuple[str, int]]:
    hosts = []
    for item in netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = item.rpartition(":")
        hosts.append((host.strip("[]") or "localhost", int(port or 6379)))
    return hosts


def _auth(netloc: str) -> dict[str, str]:
    if "@" not in netloc:
        return {}
    userinfo = netloc.rsplit("@", 1)[0]
    user, _, password = userinfo.partition(":")
    auth = {"password": unquote(password)} if password else {}
    if user:
        auth["username"] = unquote(user)
    return auth


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def _client_options(parts, timeout: float) -> dict:
    """Timeouts, credentials (percent-decoded) and TLS, for cluster and sentinel clients."""
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
               **_auth(parts.netloc)}
    if parts.scheme.startswith("rediss+"):
        options["ssl"] = True
    return options


def _sentinel_kwargs(options: dict) -> dict:
    # the sentinels get the same credentials and TLS as the data nodes, as in ``limits``
    return {**options, "retry": _no_retry()}


def _service_name(parts) -> str:
    return parts.path.strip("/").split("/")[0] or "mymaster"


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a store URL :func:`connect` takes, or None; connects to nothing."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        return f"must start with one of {', '.join(s + '://' for s in SCHEMES)}"
    try:
        if "+" in parts.scheme:
            _hosts(parts.netloc)
        else:
            redis.connection.parse_url(url)
    except ValueError:  # its message may quote part of a password: not repeated
        return f"is not a valid {parts.scheme}:// URL (check its hosts and ports)"
    return None


def connect(url: str, timeout: float) -> redis.Redis:
    """A client for ``redis://``, ``rediss://``, ``unix://``, cluster or sentinel URLs."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError("REDIS_URL: unsupported scheme " + repr(parts.scheme))
    if parts.scheme.endswith("+cluster"):
        nodes = [ClusterNode(host, port) for host, port in _hosts(parts.netloc)]
        return refresh_slots_in_background(RedisCluster(
            startup_nodes=nodes, max_connections=POOL_SIZE, retry=_no_retry(),
            decode_responses=True, **_client_options(parts, timeout)))
    if parts.scheme.endswith("+sentinel"):
        options = _client_options(parts, timeout)
        sentinel = Sentinel(_hosts(parts.netloc), sentinel_kwargs=_sentinel_kwargs(options),
                            **options)
        return sentinel.master_for(_service_name(parts), decode_responses=True,
                                   max_connections=POOL_SIZE, health_check_interval=30)
    return redis.Redis.from_url(url, max_connections=POOL_SIZE, socket_timeout=timeout,
                                socket_connect_timeout=timeout, decode_responses=True,
                                health_check_interval=30)


class _BackgroundSlotRefresh(NodesManager):
    """A cluster client's node manager whose later re-reads of the slot map (after a node
    failed, or MOVED answers piled up) run in one background thread at a time; the command
    that asked for it fails or proceeds at once on the map it has."""

    _refresh_lock: threading.Lock
    _refreshing: bool

    def initialize(self, *args, **kwargs) -> None:
        with self._refresh_lock:
            if self._refreshing:
                return
            self._refreshing = True
        threading.Thread(target=self._refresh, args=(args, kwargs), daemon=True,
                         name="redis-cluster-slots").start()

    def _refresh(self, args, kwargs) -> None:
        try:
            NodesManager.initialize(self, *args, **kwargs)
        except Exception as e:  # the cluster is still unreachable; the next failure asks again
            log.warning("Redis Cluster slot map not refreshed: %s", type(e).__name__)
        finally:
            with self._refresh_lock:
                self._refreshing = False


def refresh_slots_in_background(client):
    """``client`` (a RedisCluster, connected: its first slot map read in the foreground)
    with later re-reads in the background; any other client unchanged."""
    if isinstance(client, RedisCluster):
        manager = client.nodes_manager
        manager._refresh_lock, manager._refreshing = threading.Lock(), False
        manager.__class__ = _BackgroundSlotRefresh
    return client


def embedded() -> redis.Redis:
    """The sandbox store: in process, one process only, running the same Lua scripts."""
    import fakeredis

    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


def limiter_storage_uri(url: str | None) -> str:
    """The same store for Flask-Limiter, in the URL spelling of the ``limits`` library."""
    if url is None:
        return "memory://"
    if url.startswith("unix://"):
        return "redis+unix://" + url[len("unix://"):]
    if url.startswith(("rediss+cluster://", "rediss+sentinel://")):
        return "redis+" + url[len("rediss+"):]  # TLS travels as an option
    return url


def limiter_storage_options(url: str | None, timeout: float) -> dict:
    """Storage options for ``limits`` that make it connect exactly as :func:`connect` does.

    ``limits`` passes cluster and sentinel credentials on without percent-decoding them and
    gives the sentinels no timeout; explicit options take precedence over the URL's.
    """
    if url is None:
        return {}
    parts = urlsplit(url)
    if parts.scheme.endswith("+cluster"):
        return {**_client_options(parts, timeout), "retry": _no_retry()}
    if parts.scheme.endswith("+sentinel"):
        options = _client_options(parts, timeout)
        # every limit is read where it is counted: on the primary, never a lagging replica
        return {**options, "sentinel_kwargs": _sentinel_kwargs(options), "use_replicas": False}
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}
