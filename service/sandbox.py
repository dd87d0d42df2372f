"""Sandbox mode: the ASPSMS simulator in process, so the service runs with no configuration.

Chosen by :func:`service.config.load_settings` (no userkey configured) and nowhere else.
"""

from __future__ import annotations

import logging
import secrets
import sys

from service.config import SANDBOX_ADMIN_KEY, SANDBOX_CLIENT_KEY, Settings

log = logging.getLogger(__name__)

BANNER = """
======================================================================
 aspsms-verify is running in SANDBOX MODE - not for production.
 SMS go to an in-process ASPSMS simulator; state lives in this process.
 client key: {client}   (Authorization: Bearer {client_key})
 admin key:  {admin}   (Authorization: Bearer {admin_key})
 read "sent" codes:  GET /sandbox/messages  with the client key,
                     or the console's Messages page (/admin/, admin key)
======================================================================
"""


def start_simulator():
    """A simulator on a free loopback port, with credentials made up for this process."""
    from service.simulator import SimulatorServer

    userkey, password = "SANDBOX" + secrets.token_hex(4).upper(), secrets.token_urlsafe(16)
    server = SimulatorServer(userkey=userkey, password=password, credits=100_000).start()
    return server, userkey, password


def announce(settings: Settings) -> None:
    (client, client_key), (admin, admin_key) = (next(iter(settings.keys.clients.items())),
                                               next(iter(settings.keys.admins.items())))
    # Only the built-in development keys are ever printed; configured keys stay secret.
    client_key = client_key if client_key == SANDBOX_CLIENT_KEY else "(configured)"
    admin_key = admin_key if admin_key == SANDBOX_ADMIN_KEY else "(configured)"
    log.warning("SANDBOX MODE: not for production; the gateway is a local simulator")
    print(BANNER.format(client=client, client_key=client_key, admin=admin,
                        admin_key=admin_key), file=sys.stderr, flush=True)
