"""The ``aspsms-verify`` command: serve, simulator, and admin commands for the gateway."""

from __future__ import annotations

import argparse
import json
import os
import sys

from service.config import ConfigError, load_settings
from service.errors import ServiceError


def _serve(args) -> int:
    settings = load_settings()
    workers = 1 if settings.redis_url is None else args.workers
    if settings.redis_url is None and args.workers != 1:
        print("no REDIS_URL: the embedded store serves one process, so one worker",
              file=sys.stderr)
    argv = ["gunicorn", "-c", "python:service.gunicorn_conf", "--bind",
            f"{args.host}:{args.port}", "--workers", str(workers), "service:create_app()"]
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
    return 0  # not reached


def _simulator(args) -> int:
    from service.simulator import run

    run(args.port, args.userkey, args.password, args.credits)
    return 0


def _gateway():
    from service.gateway import AspsmsClient

    settings = load_settings()
    if settings.sandbox:
        raise ConfigError("ASPSMS_USERKEY", "admin commands need the gateway's credentials")
    return AspsmsClient(settings.aspsms_url, settings.aspsms_userkey, settings.aspsms_password,
                        timeout=settings.aspsms_timeout,
                        affiliate_id=settings.aspsms_affiliate_id)


def _credits(args) -> int:
    from service import admin_ops

    print(f"credits: {admin_ops.account_credits(_gateway())}")
    return 0


def _originator(args) -> int:
    from service import admin_ops

    if args.action == "unlock" and not args.code:
        raise SystemExit("originator unlock needs the unlock code")
    gateway = _gateway()
    if args.action == "check":
        status = admin_ops.originator_status(gateway, args.originator)
    elif args.action == "send-unlock-code":
        status = admin_ops.request_unlock_code(gateway, args.originator)
    else:
        status = admin_ops.unlock_originator(gateway, args.originator, args.code)
    print(f"{args.originator}: {status.state.value}"
          f" ({'may send' if status.authorized else 'may not send yet'})")
    return 0


def _status_codes(args) -> int:
    print(json.dumps(_gateway().list_all_status_codes(), indent=2))
    return 0


def _version(args) -> int:
    from service import __version__

    print(f"aspsms-verify {__version__}")
    if args.gateway:
        print(json.dumps(_gateway().version_info()))
    return 0


def _delivery_poll(args) -> int:
    """Inquire sends whose delivery callbacks never came; prints one JSON summary line."""
    from service.app import build_services

    if not 1 <= args.batch <= 1000:  # the gateway takes up to 1000 TRNs per inquiry (§6.1)
        raise SystemExit("--batch must be between 1 and 1000")
    settings = load_settings()
    if settings.redis_url is None:
        raise ConfigError("REDIS_URL", "delivery poll works on the service's Redis")
    services = build_services(settings)
    try:
        summary = services.verifications.notifier.poll(
            services.gateway, older_than=args.older_than, batch=args.batch,
            max_age=args.max_age)
    finally:
        services.gateway.close()
        services.redis.close()
    print(json.dumps(summary))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="aspsms-verify", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service (sandbox mode when unconfigured)")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
    serve.set_defaults(run=_serve)
    sim = sub.add_parser("simulator", help="run the ASPSMS simulator on 127.0.0.1")
    sim.add_argument("--port", type=int, default=8090)
    sim.add_argument("--userkey", default="SIMUSER")
    sim.add_argument("--password", default="simpass")
    sim.add_argument("--credits", default="1000")
    sim.set_defaults(run=_simulator)
    sub.add_parser("credits", help="show the account's credits").set_defaults(run=_credits)
    orig = sub.add_parser("originator", help="check or unlock a sender id")
    orig.add_argument("action", choices=["check", "send-unlock-code", "unlock"])
    orig.add_argument("originator")
    orig.add_argument("code", nargs="?")
    orig.set_defaults(run=_originator)
    sub.add_parser("status-codes", help="list the gateway's status codes").set_defaults(
        run=_status_codes)
    version = sub.add_parser("version", help="show versions")
    version.add_argument("--gateway", action="store_true", help="also ask the gateway")
    version.set_defaults(run=_version)
    delivery = sub.add_parser("delivery", help="delivery notifications")
    poll = delivery.add_subparsers(dest="action", required=True).add_parser(
        "poll", help="inquire the status of sends still without a final one (for cron)")
    poll.add_argument("--older-than", type=float, default=300.0, metavar="SECONDS",
                      help="only sends at least this old (default 300)")
    poll.add_argument("--batch", type=int, default=100, help="TRNs per inquiry (1-1000)")
    poll.add_argument("--max-age", type=float, default=3600.0, metavar="SECONDS",
                      help="older sends are given up without an inquiry (default 3600)")
    poll.set_defaults(run=_delivery_poll)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
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
