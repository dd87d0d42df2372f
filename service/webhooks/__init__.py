"""Events to the services' webhooks (issue 18): signed, delivered at least once, never lost.

Each decision's Lua script appends its event to its slot's stream in the same atomic step
(:mod:`service.verification.event_log`, lua/_event.lua), so a process killed at any moment
leaves no decision without its event. ``aspsms-verify worker`` (:mod:`.worker`) reads the
streams as one consumer group, signs each event in the Standard Webhooks format
(:mod:`.signing`, :mod:`.payload`), posts it to the address it checked (:mod:`.safety`),
and retries with backoff (:mod:`.queue`) for a day before keeping it as failed
(:mod:`.failed`). The request path only appends; it never waits for a webhook. No Flask.
"""
