"""Where the decisions' events go: one Redis stream per hash tag on a Redis Cluster, one
stream for everything on a standalone or Sentinel Redis. No Flask here.

A Lua script may touch only keys of its own slot on a cluster, and each decision appends
its event in the script that makes it (lua/_event.lua), so on a cluster each hash tag has
its own stream, ``otp:{<tag>}:ev`` (a verification's four-hex tag, ``otp-breakers`` for
the budgets' breakers, ``otp-webhooks`` for deliveries an admin asked to retry); the
workers find them by SCAN on every primary (:mod:`service.webhooks.streams`). One Redis
holds every key anyway, so there all events go to ``otp:{events}:ev`` and nothing needs
finding. Beside each stream, ``<stream>:exp`` holds the new verifications' expiries for the
sweep, ``<stream>:try`` the attempts of entries waiting for a retry (the workers'). While
no service has a webhook URL, the scripts are handed a name that is no stream (``…:noev``)
and write no event at all: nothing piles up for nobody.
"""

from __future__ import annotations

from collections.abc import Callable

GROUP = "webhooks"  # the workers' consumer group (lua/_event.lua creates it with a stream)
BREAKERS_TAG = "otp-breakers"
RETRIES_TAG = "otp-webhooks"
SINGLE = "otp:{events}:ev"


class EventLog:
    def __init__(self, *, sharded: bool, enabled: Callable[[], bool] = lambda: False):
        self.sharded = sharded
        self.enabled = enabled  # whether any service takes webhooks; no round trip

    @classmethod
    def off(cls, client) -> EventLog:
        """Events off, their (unused) names in the slots ``client`` needs: one stream per
        tag on a cluster, where a script's keys must share a slot."""
        from redis.cluster import RedisCluster

        return cls(sharded=isinstance(client, RedisCluster))

    def stream(self, tag: str) -> str:
        """The stream a script in ``tag``'s slot appends to (``…:noev``: events are off)."""
        name = f"otp:{{{tag}}}:ev" if self.sharded else SINGLE
        return name if self.enabled() else name[:-2] + "noev"

    def streams_pattern(self) -> str:
        return "otp:{*}:ev" if self.sharded else SINGLE


def expiry_key(stream: str) -> str:
    """The new verifications' expiries beside ``stream`` (lua/_event.lua's expiry_due)."""
    return stream + ":exp"


def tries_key(stream: str) -> str:
    """The attempts so far of ``stream``'s entries waiting for a retry (the workers'
    :mod:`service.webhooks.queue`); undo_send.lua reads it: such an entry was handed out."""
    return stream + ":try"
