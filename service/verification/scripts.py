"""The Lua scripts, as Redis runs them: each file of lua/ after the shared functions it uses."""

from __future__ import annotations

from importlib import resources

from service import tracing
from service.verification import keys

# Shared Lua functions, prepended to the scripts that use them.
PRELUDES = {"claim_attempt": ("_event", "_moving_window", "_spend_attempt", "_history"),
            "settle_check": ("_event", "_spend_attempt", "_history"),
            "count_limits": ("_event", "_moving_window"),
            "reserve_send": ("_event", "_kept_send", "_history"),
            "undo_send": ("_event", "_kept_send", "_history"),
            "record_delivery": ("_event", "_kept_send", "_history"),
            "end_pending": ("_event", "_history")}
# The support lookup's bounds (keys.py), defined once for _history.lua
HISTORY_CONSTANTS = (f"local HISTORY_MS, HISTORY_PER_PHONE, HISTORY_PER_VERIFICATION = "
                     f"{keys.HISTORY_MS}, {keys.HISTORY_PER_PHONE}, "
                     f"{keys.HISTORY_PER_VERIFICATION}\n")


def script_source(name: str) -> str:
    """lua/<name>.lua, after the shared functions it uses (PRELUDES)."""
    lua = resources.files("service.verification").joinpath("lua")
    text = lua.joinpath(f"{name}.lua").read_text()
    preludes = [lua.joinpath(f"{prelude}.lua").read_text() for prelude in PRELUDES.get(name, ())]
    constants = HISTORY_CONSTANTS if "_history" in PRELUDES.get(name, ()) else ""
    return constants + "".join(preludes) + text


def register_script(client, name: str):
    """The script, a span ``redis <name>`` per run while traces are on (tracing.py)."""
    return tracing.traced_script(client.register_script(script_source(name)), name)
