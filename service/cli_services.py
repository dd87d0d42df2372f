"""``aspsms-verify services …``: the services registry from a shell, for scripts and GitOps.

Works directly on the service's store (REDIS_URL) through the same audited operations as the
admin API (:class:`service.tenants.ServiceAdmin`), so the same rules apply and every change
is audited, under the name given with ``--actor`` (default ``cli``). Reads only the
variables it needs: REDIS_URL and OTP_SECRET (both required, the deployment's),
REDIS_TIMEOUT, OTP_API_KEYS, OTP_ADMIN_KEYS and the policy variables (the defaults a service
falls back to: give it the deployment's, or the effective values it prints differ). Every
answer is JSON on standard output; a refusal is the problem's JSON on standard error, with
exit status 1.
Running services see a change within 1 s.
"""

from __future__ import annotations

import json
import os
import sys

from service.config import ConfigError, load_parts
from service.envreader import Collector, Env
from service.errors import ServiceError
from service.verification.tenant import DEFAULT, Tenant

PARTS = ("redis", "secret", "keys", "policy", "limits", "phones")


def add_commands(sub, command) -> None:
    """The ``services`` command and its actions, on the top-level parser's subparsers."""
    services = sub.add_parser("services", help="manage services and their keys in the store",
                              description=__doc__.split("\n\n")[0])
    services.add_argument("--actor", default="cli",
                          help="the name the audit log records (default: %(default)s)")
    actions = services.add_subparsers(dest="action", required=True, metavar="ACTION")
    command(actions, "list", "every service, the default first", _list)
    show = command(actions, "show", "one service's effective values and overrides", _show)
    show.add_argument("service_id")
    create = command(actions, "create", "create a service from a JSON document", _create)
    create.add_argument("--file", default="-",
                        help="the service's JSON document (default: standard input)")
    update = command(actions, "update", "change fields (a JSON document; null removes an "
                                        "override)", _update)
    update.add_argument("service_id")
    update.add_argument("--file", default="-",
                        help="the fields to change, as JSON (default: standard input)")
    delete = command(actions, "delete", "delete a service and its keys", _delete)
    delete.add_argument("service_id")
    keys = actions.add_parser("keys", help="a service's API keys",
                              description="A service's API keys.")
    key_actions = keys.add_subparsers(dest="key_action", required=True, metavar="ACTION")
    listing = command(key_actions, "list", "the service's keys (never a secret)", _keys)
    listing.add_argument("service_id")
    made = command(key_actions, "create", "a new key (printed this once)", _key_create)
    made.add_argument("service_id")
    made.add_argument("name")
    revoke = command(key_actions, "revoke", "revoke a key", _key_revoke)
    revoke.add_argument("service_id")
    revoke.add_argument("key_id")


def _admin():
    from service import tenants
    from service.admin.audit import AuditLog

    env, collect = Env(os.environ), Collector()
    for name, why in (("REDIS_URL", "this command works on the service's store"),
                      ("OTP_SECRET", "runtime keys and Twilio sids are derived from the "
                                     "deployment's secret")):
        if not env.given(name):  # sandbox mode would fill in a store or a secret of its own
            collect.errors.append(ConfigError(name, f"is required: {why}"))
    collect.done()
    parts = load_parts(PARTS)
    redis = parts["redis"].connect()
    base = Tenant(DEFAULT, parts["policy"], parts["limits"], parts["phones"])
    return tenants.ServiceAdmin(tenants.ServiceStore(redis), AuditLog(redis), base,
                                parts["secret"], parts["keys"].clients, parts["keys"].admins,
                                webhook_allow_private=env.boolean("OTP_WEBHOOK_ALLOW_PRIVATE",
                                                                  False))


def _run(action) -> int:
    try:
        result = action(_admin())
    except ServiceError as e:
        print(json.dumps(e.to_problem()), file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


def _document(path: str):
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as e:
        raise SystemExit(f"services: cannot read {path}: {e.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise SystemExit(f"services: {path} is not JSON: {e}") from None


def _list(args) -> int:
    return _run(lambda admin: admin.list())


def _show(args) -> int:
    return _run(lambda admin: admin.show(args.service_id))


def _create(args) -> int:
    body = _document(args.file)
    return _run(lambda admin: admin.create(args.actor, body))


def _update(args) -> int:
    body = _document(args.file)
    return _run(lambda admin: admin.update(args.actor, args.service_id, body))


def _delete(args) -> int:
    return _run(lambda admin: admin.delete(args.actor, args.service_id))


def _keys(args) -> int:
    return _run(lambda admin: admin.keys(args.service_id))


def _key_create(args) -> int:
    return _run(lambda admin: admin.create_key(args.actor, args.service_id, {"name": args.name}))


def _key_revoke(args) -> int:
    return _run(lambda admin: admin.revoke_key(args.actor, args.service_id, args.key_id))
