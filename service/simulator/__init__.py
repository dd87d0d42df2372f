"""A faithful local ASPSMS JSON gateway (json.aspsms.com) for sandbox mode and tests.

`Simulator` is the stateful gateway account (usable in process); `SimulatorServer` serves it
over HTTP on the gateway's paths plus /_sim/ test controls; `run` is the CLI entry point.
Behaviour follows docs/gateway.md, including its "A" assumptions.
"""

from .server import SimulatorServer, run
from .state import Simulator

__all__ = ["Simulator", "SimulatorServer", "run"]
