"""The simulated gateway account: all state behind one lock, usable without HTTP."""

import hmac
import threading
import time
from collections.abc import Callable, Iterable
from decimal import Decimal

from . import account, sending, tokens
from .codes import OPERATIONS, STATUS_TEXT, Refusal, canonical_operation, envelope
from .delivery import Deliveries
from .faults import Fault
from .fields import normalise_phone, originator
from .notifications import Notifier
from .timefmt import iso_utc

HANDLERS = {**account.HANDLERS, **sending.HANDLERS, **tokens.HANDLERS}
assert set(HANDLERS) == set(OPERATIONS)


class Simulator:
    """An ASPSMS account: credits, tokens, originators, vouchers, messages, deliveries.

    `call(operation, body)` answers like json.aspsms.com; the remaining public methods are
    the test controls behind the /_sim/ endpoints and take `lock` themselves. The handler
    helpers (`now`, `sender`, `charge`, `record_message`) expect the caller to hold it.
    """

    def __init__(
        self,
        userkey: str = "SIMUSER",
        password: str = "simpass",
        credits=1000,
        *,
        repeat_verify_code: str = "1",
        authorized_originators: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
        notification_delay: float = 0.05,
        callback_timeout: float = 2.0,
    ):
        if repeat_verify_code not in STATUS_TEXT:
            raise ValueError(f"repeat_verify_code is not a status code: {repeat_verify_code!r}")
        self.lock = threading.RLock()
        self.userkey, self.password = userkey, password
        self.repeat_verify_code = repeat_verify_code
        self._clock = clock
        self._initial_credits = Decimal(str(credits))
        self._initial_originators = frozenset(_numeric(o) for o in authorized_originators)
        self._notifier = Notifier(self.lock, callback_timeout)
        self.deliveries = Deliveries(self._notifier, self.now, notification_delay)
        self.reset()

    # --- gateway -------------------------------------------------------------------------

    def call(self, operation: str, body) -> dict:
        """The gateway's JSON answer to `operation` (any letter case) with `body`."""
        operation = canonical_operation(operation) or operation
        handler = HANDLERS[operation]  # KeyError: no such operation (HTTP answers 404)
        body = body if isinstance(body, dict) else {}
        with self.lock:
            try:
                if operation not in account.PUBLIC:
                    self._authenticate(body)
                return handler(self, body)
            except Refusal as refusal:
                return envelope(refusal.code)

    def begin_call(self, operation: str) -> Fault | None:
        """Count a call and consume the fault that applies to it, if any."""
        with self.lock:
            self.calls[operation] += 1
            fault = self.fault
            if fault is None or not fault.applies_to(operation):
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.fault = None
            return fault

    # --- helpers for the operation handlers (lock held) ----------------------------------

    def now(self) -> float:
        return self._clock() + self.clock_offset

    def sender(self, value, *, required: bool) -> str | None:
        """A validated Originator; a locked numeric one is code 30 (docs/gateway.md §8 A)."""
        if not required and (value is None or value == ""):
            return None  # SendTokenSMS then uses the recipient's own number (docs/gateway.md §7.1)
        kind, name = originator(value)
        if kind == "numeric" and name not in self.authorized_originators:
            raise Refusal("30")
        return name

    def charge(self, amount) -> None:
        if amount > self.credits:
            raise Refusal("5")
        self.credits -= amount

    def record_message(self, recipient, text, operation, sender, **extra) -> None:
        message = {
            "recipient": recipient,
            "text": text,
            "code": None,
            "originator": sender,
            "operation": operation,
            "token_reference": None,
            "trn": None,
            "time": iso_utc(self.now()),
        }
        message.update(extra)
        self.message_log.append(message)

    # --- controls ------------------------------------------------------------------------

    def reset(self, credits=None) -> None:
        """Back to the state right after construction (optionally with another balance)."""
        with self.lock:
            self.credits = Decimal(str(credits)) if credits is not None else self._initial_credits
            self.authorized_originators = set(self._initial_originators)
            self.unlock_codes: dict[str, str] = {}
            self.tokens: dict[tuple[str | None, str], tokens.Token] = {}
            self.vouchers: dict[str, account.Voucher] = {}
            self.message_log: list[dict] = []
            self.fault: Fault | None = None
            self.calls = dict.fromkeys(OPERATIONS, 0)
            self.connections_opened = 0
            self.clock_offset = 0.0
            self.deliveries.reset()

    def messages(self, recipient: str | None = None) -> list[dict]:
        """Sent messages, oldest first, optionally only those to one number."""
        wanted = (normalise_phone(recipient) or recipient) if recipient else None
        with self.lock:
            return [dict(m) for m in self.message_log if wanted in (None, m["recipient"])]

    def clear_messages(self) -> int:
        with self.lock:
            count = len(self.message_log)
            self.message_log.clear()
            return count

    def set_fault(self, spec) -> dict:
        """Install the fault described by `spec` (replacing any other); ValueError if bad."""
        fault = Fault.from_json(spec)
        with self.lock:
            self.fault = fault
            return fault.to_json()

    def fault_json(self) -> dict | None:
        with self.lock:
            return self.fault.to_json() if self.fault else None

    def clear_faults(self) -> None:
        with self.lock:
            self.fault = None

    def configure_delivery(self, spec: dict) -> dict:
        with self.lock:
            return self.deliveries.configure(spec)

    def advance_clock(self, seconds: float) -> float:
        """Move the simulator's time forward (token expiry without sleeping)."""
        with self.lock:
            self.clock_offset += seconds
            return self.clock_offset

    def note_connection(self) -> None:
        with self.lock:
            self.connections_opened += 1

    def stats(self) -> dict:
        with self.lock:
            return {
                "connections_opened": self.connections_opened,
                "calls": dict(self.calls),
                "credits": account.format_credits(self.credits),
            }

    def close(self) -> None:
        """End the notification threads (they start again if the simulator is used again)."""
        self._notifier.close()

    def _authenticate(self, body: dict) -> None:
        # docs/gateway.md §2 A: wrong userkey and wrong password both answer 3.
        user, password = body.get("UserName"), body.get("Password")
        if not isinstance(user, str) or not isinstance(password, str):
            raise Refusal("3")
        user_ok = hmac.compare_digest(user.encode(), self.userkey.encode())
        password_ok = hmac.compare_digest(password.encode(), self.password.encode())
        if not (user_ok and password_ok):
            raise Refusal("3")


def _numeric(value: str) -> str:
    kind, name = originator(value)
    if kind != "numeric":
        raise ValueError(f"only numeric originators need authorizing, not {value!r}")
    return name
