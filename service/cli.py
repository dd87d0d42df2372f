"""The aspsms-verify command: the service, the ASPSMS simulator, and admin commands for
the gateway account.

Each command reads only the variables it uses and reports every problem among them at
once, one line each, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from service.config import ConfigError, load_parts, load_settings, sandbox
from service.envreader import Collector, Env, report
from service.errors import ServiceError

SIMULATOR_DEFAULTS = {"port": 8090, "userkey": "SIMUSER", "password": "simpass",
                      "credits": "1000"}


def _serve(args) -> int:
    """Checks here what the master checks again, so a bad value never reaches exec."""
    env, collect = Env(os.environ), Collector()
    host = args.host or env.get("HOST", "127.0.0.1")
    if not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", host):
        collect.errors.append(ConfigError("HOST" if not args.host else "--host",
                                          f"must be a host name or address, got {host!r}"))
    port = args.port if args.port is not None else collect(
        lambda: env.integer("PORT", 8000, 1, 65535))
    # one worker in the sandbox; a warning only if more are asked
    workers = args.workers if args.workers is not None else collect(
        lambda: env.integer("WEB_CONCURRENCY", 1 if sandbox() else 2, 1, 256))
    collect(load_settings)
    collect.done()
    # the master (service.gunicorn_conf) runs one worker in sandbox mode, with a warning
    argv = ["gunicorn", "-c", "python:service.gunicorn_conf", "--bind", f"{host}:{port}",
            "--workers", str(workers), "service:create_app()"]
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
    return 0  # not reached


def _simulator(args) -> int:
    from service.simulator import run

    try:
        run(args.port, args.userkey, args.password, args.credits)
    except OSError as e:  # binding: the port is taken or not ours to use
        print(f"simulator: cannot listen on 127.0.0.1:{args.port}: {e.strerror or e}",
              file=sys.stderr)
        return 1
    return 0


def _gateway():
    return load_parts(("gateway",), sandbox_allowed=False)["gateway"].client()


def _credits(args) -> int:
    from service.admin import originators

    print(f"credits: {originators.account_credits(_gateway())}")
    return 0


def _originator(args) -> int:
    from service.admin import originators

    if args.action == "unlock" and not args.code:
        raise SystemExit("originator unlock needs the unlock code")
    gateway = _gateway()
    if args.action == "check":
        status = originators.originator_status(gateway, args.originator)
    elif args.action == "send-unlock-code":
        status = originators.request_unlock_code(gateway, args.originator)
    else:
        status = originators.unlock_originator(gateway, args.originator, args.code)
    print(f"{args.originator}: {status.state.value}"
          f" ({'may send' if status.authorized else 'may not send yet'})")
    return 0


def _status_codes(args) -> int:
    print(json.dumps(_gateway().list_all_status_codes(), indent=2))
    return 0


def _version(args) -> int:
    from service import __version__

    gateway = _gateway() if args.gateway else None  # a configuration error before any output
    print(f"aspsms-verify {__version__}")
    if gateway is not None:
        print(json.dumps(gateway.version_info()))
    return 0


def _delivery_poll(args) -> int:
    """Inquire sends whose delivery callbacks never came; prints one JSON summary line."""
    from service.verification.delivery import DeliveryNotifier
    from service.verification.store import VerificationStore

    if not 1 <= args.batch <= 1000:  # the gateway takes up to 1000 TRNs per inquiry
        raise SystemExit("--batch must be between 1 and 1000")
    parts = load_parts(("gateway", "redis", "secret", "public_url"), sandbox_allowed=False)
    redis, gateway, secret = parts["redis"].connect(), parts["gateway"].client(), parts["secret"]
    notifier = DeliveryNotifier(VerificationStore(redis, secret), secret, parts["public_url"])
    try:
        summary = notifier.poll(gateway, older_than=args.older_than, batch=args.batch,
                                max_age=args.max_age)
    finally:
        gateway.close()
        redis.close()
    print(json.dumps(summary))
    return 0


def _worker(args) -> int:
    """Deliver the services' events to their webhooks until SIGTERM."""
    from service.webhooks.running import run
    from service.webhooks.worker import Timing

    if args.backoff_base <= 0:
        raise SystemExit("--backoff-base must be above 0")
    return run(Timing(backoff_base=args.backoff_base, claim_idle=args.claim_idle),
               args.metrics_port)


def _command(sub, name: str, summary: str, run, description: str | None = None):
    command = sub.add_parser(name, help=summary, description=description or summary + ".")
    command.set_defaults(run=run)
    return command


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="aspsms-verify", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The admin commands (credits, originator, status-codes, version --gateway,\n"
               "delivery poll) read ASPSMS_USERKEY, ASPSMS_PASSWORD, ASPSMS_URL,\n"
               "ASPSMS_TIMEOUT and ASPSMS_AFFILIATE_ID; delivery poll also REDIS_URL,\n"
               "REDIS_TIMEOUT, OTP_SECRET and OTP_PUBLIC_URL. services reads REDIS_URL,\n"
               "REDIS_TIMEOUT, OTP_SECRET, the keys and the policy variables (the defaults).")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = _command(sub, "serve", "run the service under gunicorn (sandbox mode when "
                     "ASPSMS_USERKEY is unset)", _serve)
    serve.add_argument("--host", help="address to listen on (default: $HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: $PORT or 8000)")
    serve.add_argument("--workers", type=int, metavar="N",
                       help="gunicorn worker processes (default: $WEB_CONCURRENCY or 2; "
                            "always 1 in sandbox mode)")
    worker = _command(sub, "worker", "deliver events to the services' webhooks (run as many "
                      "as you like; needs REDIS_URL)", _worker)
    worker.add_argument("--metrics-port", type=int, default=9100, metavar="PORT",
                        help="serve /metrics on this port, 0 for none (default: %(default)s)")
    worker.add_argument("--backoff-base", type=float, default=5.0, metavar="SECONDS",
                        help="wait before the first retry; each further one waits about "
                             "twice as long, at most an hour (default: %(default)g)")
    worker.add_argument("--claim-idle", type=float, default=60.0, metavar="SECONDS",
                        help="take over events another worker read this long ago and never "
                             "settled: it died (default: %(default)g)")
    sim = _command(sub, "simulator", "run the ASPSMS simulator on 127.0.0.1", _simulator,
                   "Run a local ASPSMS JSON gateway (with /_sim/ test controls) on "
                   "127.0.0.1 until Ctrl-C.")
    sim.add_argument("--port", type=int, default=SIMULATOR_DEFAULTS["port"],
                     help="port to listen on (default: %(default)s)")
    sim.add_argument("--userkey", default=SIMULATOR_DEFAULTS["userkey"],
                     help="the account's userkey, sent as UserName (default: %(default)s)")
    sim.add_argument("--password", default=SIMULATOR_DEFAULTS["password"],
                     help="the account's API password (default: %(default)s)")
    sim.add_argument("--credits", default=SIMULATOR_DEFAULTS["credits"],
                     help="the account's starting credits (default: %(default)s)")
    _command(sub, "credits", "show the account's credits (CheckCredits)", _credits)
    orig = _command(sub, "originator", "check or unlock a sender id", _originator)
    orig.add_argument("action", choices=["check", "send-unlock-code", "unlock"],
                      help="check its state, have the gateway text an unlock code to the "
                           "number, or unlock it with that code")
    orig.add_argument("originator", help="up to 11 letters/digits, or an E.164 number")
    orig.add_argument("code", nargs="?", help="the unlock code (unlock only)")
    _command(sub, "status-codes", "list the gateway's status codes (ListAllStatusCodes)",
             _status_codes)
    version = _command(sub, "version", "show versions", _version)
    version.add_argument("--gateway", action="store_true",
                         help="also ask the gateway for its version (VersionInfo)")
    delivery = sub.add_parser("delivery", help="delivery notifications",
                              description="Delivery notifications.")
    poll = _command(delivery.add_subparsers(dest="action", required=True, metavar="ACTION"),
                    "poll", "inquire the status of sends still without a final one "
                    "(InquireDeliveryNotifications, for cron)", _delivery_poll)
    poll.add_argument("--older-than", type=float, default=300.0, metavar="SECONDS",
                      help="only sends at least this old (default: %(default)g)")
    poll.add_argument("--batch", type=int, default=100, metavar="N",
                      help="TRNs per inquiry, 1-1000 (default: %(default)s)")
    poll.add_argument("--max-age", type=float, default=3600.0, metavar="SECONDS",
                      help="older sends are given up without an inquiry "
                           "(default: %(default)g)")
    from service import cli_services

    cli_services.add_commands(sub, _command)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as e:
        report(e)
        return 2
    except ServiceError as e:  # refused by our own checks (invalid originator, rejected code)
        print(f"refused: {e.detail}", file=sys.stderr)
        return 1
    except Exception as e:  # the gateway's reason, one line, non-zero exit
        from service.gateway import GatewayError

        if not isinstance(e, GatewayError):
            raise
        print(f"gateway error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
