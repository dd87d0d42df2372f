"""The verification domain: start, check (checks.py), read and cancel. No Flask here.

Single use, attempt counting and expiry live in this service, not in the gateway (which has
no attempt limit and re-approves a verified token for any code, docs/gateway.md §7.2). Every
decision that must be atomic is one Lua script of :mod:`service.verification.store`.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from service.events import Event
from service.gateway import AspsmsClient, GatewayError, GatewayTimeout
from service.verification import errors, messages
from service.verification.checks import Checks
from service.verification.codes import validate_mask
from service.verification.delivery import trn_base
from service.verification.model import Verification, now_ms
from service.verification.phones import Phone, PhonePolicy, mask_phone
from service.verification.store import UNREAD, Reservation, Unreplicated, VerificationStore
from service.verification.take_backs import TakeBacks
from service.verification.upstream import problem_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    code_mask: str
    validity_minutes: int
    max_attempts: int
    resend_cooldown: int
    max_sends: int
    max_failures_per_phone: int
    originator: str
    sms_enabled: bool = True
    message_template: str | None = None
    test_numbers: dict | None = None


@dataclass(frozen=True)
class StartRequest:
    phone: str
    locale: str | None = None
    code_mask: str | None = None
    validity_minutes: int | None = None
    case_sensitive: bool = False
    reference: str | None = None


@dataclass(frozen=True)
class Started:
    verification: Verification
    created: bool


class VerificationService(Checks):
    def __init__(self, *, store: VerificationStore, gateway: AspsmsClient, policy: Policy,
                 phones: PhonePolicy, notifier=None, clock: Callable[[], float] = time.time,
                 on_event: Callable[..., None] | None = None, claim_hold_seconds: float = 35,
                 limits=None):
        self.store = store
        self.gateway = gateway
        self.policy = policy
        self.phones = phones
        self.notifier = notifier
        self.clock = clock
        self.limits = limits  # service.verification.budgets.PhoneLimits, or None: unlimited
        self.take_backs = TakeBacks(clock=clock)
        self.on_event = on_event or (lambda *args, **kwargs: None)
        # a claim outlives the longest gateway call (timeout, two connect retries)
        self.claim_hold_ms = int(claim_hold_seconds * 1000)

    # -- start ---------------------------------------------------------------------------
    def start(self, client: str, request: StartRequest) -> Started:
        """Send a code: a new verification, or a resend on the pending one."""
        phone = self.phones.parse(request.phone)
        mask, validity = self._options(request)
        if not self.policy.sms_enabled:
            raise errors.SmsDisabled("Sending SMS is switched off (OTP_SMS_ENABLED=false).")
        real = self._test_code(phone.e164) is None  # a test number's code is never sent
        costs = self.limits is not None and real
        trn = trn_base if self.notifier is not None and real else None
        ph = self.store.phone_hash(phone.e164)
        self.take_backs.flush(ph)  # undos for this phone the store failed, before reserving
        seen, reservation = self._reserve(client, phone, ph, request, mask, validity, trn)

        def undo():
            self._take_back(client, ph, reservation, seen, trn)

        if costs:
            try:  # counted after the reservation, so only sends count (a breaker too)
                self.limits.count_send(phone, ph)
            except errors.ServiceError:
                undo()
                raise
        verification = Verification.from_hash(reservation.verification_id, reservation.state)
        try:
            self._deliver(verification)
        except GatewayError as e:
            # A send without an answer may have texted the code and been charged, so it
            # stands as sent: it counts toward OTP_MAX_SENDS (its limits and budgets are
            # counted already), the verification stays pending, a resend awaits the cooldown.
            unknown = isinstance(e, GatewayTimeout) and e.outcome_unknown
            if not unknown:
                undo()
            self.on_event(Event.SEND_FAILED, country=phone.country)
            problem = problem_for(e, verification_id=verification.id)
            if unknown:
                problem.extensions["verification_id"] = verification.id
            raise problem from e
        self.on_event(Event.SENT, country=phone.country, test=verification.test,
                      verification=verification)
        return Started(verification, reservation.outcome == "created")

    def _take_back(self, client, ph, reservation: Reservation, seen, trn,
                   reference: str = "") -> None:
        """Undo a reserved send that never went out; later, if the store fails now."""
        def undo():
            return self.store.undo_send(client=client, phone_hash=ph, reservation=reservation,
                                        seen_pointer=seen, reference=reference,
                                        trn=trn(reservation.verification_id) if trn else "")

        self.take_backs.run(undo, key=ph, until=int(reservation.state["expires"]) / 1000)

    def _take_back_unanswered(self, client, ph, seen, fields: dict, new_id: str, trn) -> None:
        """reserve_send.lua may have run with its answer lost (Redis timed out, or froze and
        ran it later): take back what it may have reserved, a creation under ``new_id`` or a
        resend under the new token reference. Each is a no-op if it never happened."""
        state = {"sends": "1", "expires": str(fields["expires"])}
        self._take_back(client, ph, Reservation("created", new_id, state=state), seen, trn)
        if seen is not None:
            self._take_back(client, ph, Reservation("resend", seen, state=state), seen, trn,
                            reference=fields["ref"])

    def _options(self, request: StartRequest) -> tuple[str, int]:
        mask = request.code_mask or self.policy.code_mask
        problem = validate_mask(mask)
        if problem:
            raise errors.ValidationFailed(f"code_mask {problem}.",
                                          errors={"code_mask": [problem]})
        validity = request.validity_minutes or self.policy.validity_minutes
        if not 1 <= validity <= self.policy.validity_minutes:
            message = f"must be between 1 and {self.policy.validity_minutes}"
            raise errors.ValidationFailed(f"validity_minutes {message}.",
                                          errors={"validity_minutes": [message]})
        return mask, validity

    def _reserve(self, client, phone: Phone, ph, request, mask, validity, trn):
        """The reservation; ``trn`` names a send that will await its delivery status."""
        seen = UNREAD  # most starts are a phone's first: the script reads the pointer
        for _ in range(5):
            now = now_ms(self.clock)
            new_id = self.store.new_id(ph)
            expires = now + validity * 60_000
            fields = self._new_fields(client, phone, ph, request, mask, validity, now)
            prior = None if seen is UNREAD else seen
            try:
                reservation = self.store.reserve_send(
                    client=client, phone_hash=ph, seen_pointer=seen, new_id=new_id,
                    now_ms=now, cooldown_ms=self.policy.resend_cooldown * 1000,
                    max_sends=self.policy.max_sends, expires_ms=expires, fields=fields,
                    trns=("", "") if trn is None else (trn(prior) if prior else "",
                                                       trn(new_id)))
            except Unreplicated as e:
                self._take_back(client, ph, e.reservation, prior, trn)
                raise
            except errors.StoreUnavailable:
                self._take_back_unanswered(client, ph, prior, fields, new_id, trn)
                raise
            if reservation.outcome != "retry":
                break
            seen = reservation.verification_id  # the pointer as the script found it
        else:
            raise errors.CheckInProgress("Concurrent starts for this phone; try again.")
        self._refuse_if_limited(reservation)
        return (None if seen is UNREAD else seen), reservation

    def _new_fields(self, client, phone: Phone, ph, request, mask, validity, now) -> dict:
        return {
            "client": client, "status": "pending", "phone": phone.e164, "ph": ph,
            "country": phone.country, "created": now, "expires": now + validity * 60_000,
            "attempts": self.policy.max_attempts, "sends": 1,
            "next_resend": now + self.policy.resend_cooldown * 1000,
            "ref": secrets.token_hex(16), "mask": mask, "validity": validity,
            "cs": "1" if request.case_sensitive else "0",
            "locale": messages.language(request.locale), "reference": request.reference or "",
            "test": "1" if self._test_code(phone.e164) else "0", "delivery": "submitted",
        }

    @staticmethod
    def _refuse_if_limited(reservation: Reservation) -> None:
        if reservation.outcome == "cooldown":
            raise errors.RateLimited("Wait before asking for another code.",
                                     reservation.wait_ms / 1000, "resend_cooldown")
        if reservation.outcome == "max_sends":
            raise errors.RateLimited("No more codes can be sent for this verification.",
                                     reservation.wait_ms / 1000, "max_sends")

    def _test_code(self, e164: str) -> str | None:
        entry = (self.policy.test_numbers or {}).get(e164)
        if entry is None:
            return None
        if entry.expires < datetime.now(UTC).date():
            log.warning("test number entry has expired and is ignored")
            return None
        return entry.code

    def _deliver(self, verification: Verification) -> None:
        if verification.test:
            self.on_event(Event.TEST_NUMBER_USED, verification=verification)
            return
        urls = self.notifier.urls_for(verification) if self.notifier else {}
        self.gateway.send_token_sms(
            verification.phone,
            token_reference=verification.token_reference,
            message_data=messages.render(verification.locale, verification.validity_minutes,
                                         self.policy.message_template),
            token_validity=verification.validity_minutes,
            token_mask=verification.mask,
            case_sensitive=verification.case_sensitive,
            originator=self.policy.originator,
            **urls,
        )

    # -- read and cancel -----------------------------------------------------------------
    def read(self, client: str, verification_id: str | None) -> Verification:
        """The verification, ended as expired when its time is up."""
        data = self.store.read(verification_id) if verification_id else None
        if data is None or data.get("client") != client:
            raise errors.VerificationNotFound("No such verification.")
        verification = Verification.from_hash(verification_id, data)
        if verification.is_pending and verification.expires_ms <= now_ms(self.clock):
            self._end(verification, "expired")
            return self.read(client, verification_id)
        return verification

    def cancel(self, client: str, verification_id: str) -> Verification:
        verification = self.read(client, verification_id)
        decision, status = self._end(verification, "canceled")
        if decision == "closed":
            raise self._closed(status)
        return self.read(client, verification_id)

    def _end(self, verification: Verification, status: str) -> tuple[str, str]:
        decision, detail = self.store.end_pending(
            verification.id, client=verification.client, now_ms=now_ms(self.clock),
            status=status, masked_phone=mask_phone(verification.phone))
        if decision == "not_found":
            raise errors.VerificationNotFound("No such verification.")
        return decision, detail
