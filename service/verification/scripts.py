"""The Lua scripts, as Redis runs them: each file of lua/ after the shared functions it uses."""

from __future__ import annotations

from importlib import resources

# Shared Lua functions, prepended to the scripts that use them.
PRELUDES = {"claim_attempt": ("_event", "_moving_window", "_spend_attempt"),
            "settle_check": ("_event", "_spend_attempt"),
            "count_limits": ("_event", "_moving_window"),
            "reserve_send": ("_event", "_kept_send"), "undo_send": ("_event", "_kept_send"),
            "record_delivery": ("_event", "_kept_send"), "end_pending": ("_event",)}


def script_source(name: str) -> str:
    """lua/<name>.lua, after the shared functions it uses (PRELUDES)."""
    lua = resources.files("service.verification").joinpath("lua")
    text = lua.joinpath(f"{name}.lua").read_text()
    preludes = [lua.joinpath(f"{prelude}.lua").read_text() for prelude in PRELUDES.get(name, ())]
    return "".join(preludes) + text


def register_script(client, name: str):
    return client.register_script(script_source(name))
