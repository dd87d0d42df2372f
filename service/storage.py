"""Connections to the state store: Redis in all its forms, or the sandbox's embedded store.

The URL forms are the ones the ``limits`` library understands, so one ``REDIS_URL`` serves
both the verification state and Flask-Limiter. Socket and connect timeouts are always set
and the pool is bounded, so an unreachable Redis costs a request at most the timeout.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

POOL_SIZE = 64


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


def connect(url: str, timeout: float) -> redis.Redis:
    """A client for ``redis://``, ``rediss://``, ``unix://``, cluster or sentinel URLs."""
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
               "decode_responses": True, "health_check_interval": 30}
    parts = urlsplit(url)
    if parts.scheme == "redis+cluster":
        nodes = [ClusterNode(host, port) for host, port in _hosts(parts.netloc)]
        options.pop("health_check_interval")
        return RedisCluster(startup_nodes=nodes, max_connections=POOL_SIZE,
                            **_auth(parts.netloc), **options)
    if parts.scheme == "redis+sentinel":
        service = parts.path.strip("/").split("/")[0] or "mymaster"
        sentinel = Sentinel(_hosts(parts.netloc), sentinel_kwargs={
            "socket_timeout": timeout, "socket_connect_timeout": timeout}, **options,
            **_auth(parts.netloc))
        return sentinel.master_for(service)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("REDIS_URL: unsupported scheme " + repr(parts.scheme))
    return redis.Redis.from_url(url, max_connections=POOL_SIZE, **options)


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
    return url
